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
SELECT pg_notify('prometheus_bench', CAST(:run_id AS text));

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
