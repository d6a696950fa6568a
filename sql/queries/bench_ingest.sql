-- name: bench_ingest_runs
-- What the triggers did during `bench ingest`: every batch should have made one run ready.
SELECT count(*) AS runs, count(*) FILTER (WHERE phase = 'DATA_READY') AS ready
FROM engine_runs;
