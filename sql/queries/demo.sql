-- name: demo_runs
SELECT * FROM engine_runs ORDER BY as_of_date, region;

-- name: demo_latencies
-- From the DATA_READY transition, written inside the ingestion job's transaction just
-- before it commits, to the COMPLETED transition: both on the database's clock.
SELECT extract(epoch FROM done.at - ready.at) AS seconds
FROM engine_run_events ready
JOIN engine_run_events done
  ON done.run_id = ready.run_id AND done.kind = 'transition' AND done.to_phase = 'COMPLETED'
WHERE ready.kind = 'transition' AND ready.to_phase = 'DATA_READY';

-- name: demo_top_of_book
SELECT i.symbol, b.instrument_id, b.weight
FROM book_weights b
JOIN instruments i USING (instrument_id)
WHERE b.run_id = :run_id
ORDER BY b.weight DESC, b.instrument_id
LIMIT :limit;

-- name: demo_forget_reactor
-- The demo's in-process reactor ends with the demo: no heartbeat row may make `check` on a
-- kept demo database expect it back.
DELETE FROM reactor_heartbeats WHERE reactor_id = :reactor_id;
