-- name: migration_lock
-- Serialise concurrent upgrades, one transaction at a time: held until this transaction
-- ends, so nothing is left behind on a pooled server connection.
SELECT pg_advisory_xact_lock(hashtextextended('prometheus.migrate', 0));

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS prometheus_migrations (
    name       text PRIMARY KEY,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migrations_table_exists
SELECT to_regclass('prometheus_migrations') IS NOT NULL AS present;

-- name: applied_migrations
SELECT name, checksum, applied_at FROM prometheus_migrations ORDER BY name;

-- name: record_migration
INSERT INTO prometheus_migrations (name, checksum) VALUES (:name, :checksum);

-- name: migration_lock_timeout
-- For this file's transaction: a lock it cannot have within this time fails the try
-- (55P03) instead of queueing every later claim behind it.
SELECT set_config('lock_timeout', :timeout, true);
