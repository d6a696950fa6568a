-- name: completed_runs_since
-- Runs COMPLETED at or after :since, oldest first: a polling orchestrator (Dagster's
-- sensor) compares them with what it has recorded. engine_runs holds a row per region and
-- market day, thousands in years, so no index is needed for this once-a-tick read.
SELECT * FROM engine_runs
WHERE phase = 'COMPLETED' AND phase_changed_at >= :since
ORDER BY phase_changed_at, run_id;
