-- name: bench_create_runs
-- Runs for a benchmark, WAITING_FOR_DATA, one per (day, region) from a start date.
INSERT INTO engine_runs (as_of_date, region)
SELECT CAST(:start AS date) + day, :region
FROM generate_series(0, :runs - 1) AS day
RETURNING run_id;

-- name: bench_make_ready
UPDATE engine_runs SET phase = 'DATA_READY' WHERE run_id = :run_id;

-- name: bench_make_all_ready
UPDATE engine_runs SET phase = 'DATA_READY' WHERE phase = 'WAITING_FOR_DATA';

-- name: bench_count_active
-- Polled while the benchmark runs: served by engine_runs_active_idx, so it gets cheaper
-- as runs complete instead of costing a scan of every run each time.
SELECT count(*) FROM engine_runs WHERE phase NOT IN ('COMPLETED', 'FAILED');

-- name: bench_completed_signal
-- Delivered when the transaction that completes the run commits, and not before.
SELECT prometheus_notify('prometheus_bench', CAST(:run_id AS text));

-- name: bench_park_runs
-- Put DATA_READY runs in backoff, as after a failed attempt: active, but not due.
UPDATE engine_runs SET next_attempt_at = now() + interval '1 hour' WHERE phase = 'DATA_READY';

-- name: bench_forward_transitions
SELECT count(*) FROM engine_run_events
WHERE kind = 'transition' AND from_phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE');

-- name: bench_listeners
-- Reactors ready: their listener connections, by application_name.
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name LIKE 'prometheus-listener:%';

-- name: bench_vacuum_runs
-- Fresh statistics after the bulk load, as autovacuum would give a live database.
VACUUM ANALYZE engine_runs;

-- name: bench_web_runs
-- `bench web`: one WAITING_FOR_DATA run per session date of a region.
INSERT INTO engine_runs (as_of_date, region)
SELECT day, :region FROM unnest(CAST(:dates AS date[])) AS day;

-- name: bench_web_move
-- `bench web`: move every :every-th run in :from_phase dated before :before to
-- :to_phase, through the guard and audit triggers (one event per run), as the engine
-- would; a FAILED run keeps the error and attempts that made it fail.
UPDATE engine_runs
SET phase = :to_phase,
    attempts = CASE WHEN :to_phase = 'FAILED' THEN 3 ELSE attempts END,
    last_error = CASE WHEN :to_phase = 'FAILED' THEN :error END
WHERE phase = :from_phase AND as_of_date < :before AND run_id % :every = 0;

-- name: bench_web_batches
-- `bench web`: each region requires two datasets; every run has its prices batch, and
-- all but the waiting runs their fundamentals batch too.
WITH required AS (
    INSERT INTO region_datasets (region, dataset)
    SELECT DISTINCT region, dataset FROM engine_runs,
           unnest(ARRAY['prices', 'fundamentals']) AS dataset
)
INSERT INTO ingestion_batches (dataset, as_of_date, region, status, row_count, completed_at)
SELECT dataset, as_of_date, region, 'COMPLETE', 5000, now()
FROM engine_runs, unnest(ARRAY['prices', 'fundamentals']) AS dataset
WHERE dataset = 'prices' OR phase <> 'WAITING_FOR_DATA';

-- name: bench_web_heartbeats
-- `bench web`: a live reactor and one that stopped, as the overview lists them.
INSERT INTO reactor_heartbeats (reactor_id, host, pid, stopped_at)
VALUES ('bench-live', 'bench', 1, NULL), ('bench-stopped', 'bench', 2, now());

-- name: bench_web_vacuum
VACUUM ANALYZE;

-- name: bench_count_runs
SELECT count(*) FROM engine_runs;

-- name: bench_count_events
SELECT count(*) FROM engine_run_events;
