-- `prometheus backfill` (prometheus/pipeline/backfill.py): the runs of a range of dates
-- and regions, as the plan needs them, and their progress.

-- name: lock_backfill_terminal_runs
-- The runs a reset may touch, locked before the plan is made (in run_id order, as every
-- multi-run lock of ours, so two backfills cannot deadlock); bounded by the caller's
-- lock_timeout.
SELECT run_id FROM engine_runs
WHERE region = ANY (CAST(:regions AS text[]))
  AND as_of_date BETWEEN :start AND :end
  AND phase IN ('COMPLETED', 'FAILED')
ORDER BY run_id
FOR NO KEY UPDATE;

-- name: backfill_runs
-- The range's runs, and whether a backfill with this reason reset each already (its
-- audit event says so): the reason names a reprocessing request, which is done once.
SELECT r.run_id, r.as_of_date, r.region, r.phase,
       CAST(:reason AS text) IS NOT NULL AND EXISTS (
           SELECT FROM engine_run_events e
           WHERE e.run_id = r.run_id AND e.kind = 'transition'
             AND e.detail ->> 'override' = 'backfill'
             AND e.detail ->> 'reason' = CAST(:reason AS text)) AS reprocessed
FROM engine_runs r
WHERE r.region = ANY (CAST(:regions AS text[]))
  AND r.as_of_date BETWEEN :start AND :end
ORDER BY r.as_of_date, r.region;

-- name: backfill_progress
-- The phases of these (date, region) runs now, and how many of them a hold covers.
SELECT r.phase, count(*) AS runs, count(r.hold_id) AS held
FROM unnest(CAST(:dates AS date[]), CAST(:regions AS text[])) AS p (as_of_date, region)
JOIN engine_runs_with_holds r ON r.as_of_date = p.as_of_date AND r.region = p.region
GROUP BY r.phase;
