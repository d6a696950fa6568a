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

-- name: ensure_calendar_runs
-- Closed sessions' runs, so that late data shows as WAITING_FOR_DATA runs. One statement,
-- in (as_of_date, region) order, the order the readiness trigger locks pairs in, so it
-- cannot deadlock with a backfill; runs that exist are filtered out first, so a sweep
-- does not use up run ids on conflicts.
WITH context AS (
    SELECT set_config('prometheus.actor', :actor, true)
), wanted AS (
    SELECT DISTINCT d AS as_of_date, r AS region
    FROM unnest(CAST(:dates AS date[]), CAST(:regions AS text[])) AS w (d, r)
)
INSERT INTO engine_runs (as_of_date, region)
SELECT w.as_of_date, w.region
FROM wanted w, context
WHERE NOT EXISTS (
    SELECT 1 FROM engine_runs e WHERE e.as_of_date = w.as_of_date AND e.region = w.region)
ORDER BY w.as_of_date, w.region
ON CONFLICT (as_of_date, region) DO NOTHING;

-- name: database_now
-- Calendar decisions use the database's clock, like backoff and stuck checks.
SELECT now();
