-- name: heartbeat
-- The reactor is alive: `prometheus check` reports one whose heartbeat stopped.
INSERT INTO reactor_heartbeats (reactor_id, host, pid)
VALUES (:reactor_id, :host, :pid)
ON CONFLICT (reactor_id) DO UPDATE SET last_seen_at = now(), stopped_at = NULL;

-- name: heartbeat_stopped
UPDATE reactor_heartbeats SET last_seen_at = now(), stopped_at = now()
WHERE reactor_id = :reactor_id;

-- name: calendar_regions
-- Regions the reactor creates runs for: those that require at least one dataset.
SELECT DISTINCT region FROM region_datasets ORDER BY region;

-- name: ensure_calendar_run
-- A closed session's run, so that late data shows as a WAITING_FOR_DATA run.
WITH context AS (
    SELECT set_config('prometheus.actor', :actor, true)
)
INSERT INTO engine_runs (as_of_date, region)
SELECT :as_of_date, :region FROM context
ON CONFLICT (as_of_date, region) DO NOTHING;

-- name: database_now
-- Calendar decisions use the database's clock, like backoff and stuck checks.
SELECT now();
