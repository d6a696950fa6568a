-- `prometheus check`: what an operator must look at. Every age is measured from :now,
-- the database's clock read once per check (check_clock), never a host clock.

-- name: check_clock
-- The instant the whole check is measured at: the transaction's now(), unless a caller
-- pins one (tests at exact boundaries).
SELECT coalesce(CAST(:at AS timestamptz), now()) AS now;

-- name: check_runs_by_phase
SELECT phase, count(*) AS runs FROM engine_runs GROUP BY phase;

-- name: check_stuck_runs
-- Workable runs, not held, whose phase has not changed for longer than that phase's
-- limit. The limits arrive as two parallel arrays (phase, seconds), so a per-phase policy
-- stays one statement; engine_runs_active_idx serves (phase, phase_changed_at).
WITH limits AS (
    SELECT phase, make_interval(secs => limit_s) AS stuck_after
    FROM unnest(CAST(:phases AS text[]), CAST(:limits_s AS double precision[]))
         AS l (phase, limit_s)
)
SELECT r.run_id, r.as_of_date, r.region, r.phase, r.phase_changed_at,
       r.attempts, r.last_error,
       CAST(:now AS timestamptz) - r.phase_changed_at AS age,
       l.stuck_after
FROM engine_runs r
JOIN limits l ON l.phase = r.phase
WHERE r.phase_changed_at < CAST(:now AS timestamptz) - l.stuck_after
  -- A held run is not stuck but held: a hold held too long is HOLD_STALE.
  AND NOT EXISTS (SELECT FROM engine_run_hold_coverage c WHERE c.run_id = r.run_id)
ORDER BY r.phase_changed_at, r.run_id;

-- name: check_waiting_runs
-- Runs still waiting for data, whether their region requires any dataset at all (if not,
-- nothing will ever make them DATA_READY), and which required batches are not COMPLETE.
SELECT r.run_id, r.as_of_date, r.region, r.phase_changed_at,
       EXISTS (SELECT 1 FROM region_datasets d WHERE d.region = r.region) AS has_datasets,
       coalesce(
           (SELECT jsonb_agg(jsonb_build_object('dataset', d.dataset, 'status', b.status)
                             ORDER BY d.dataset)
            FROM region_datasets d
            LEFT JOIN ingestion_batches b
              ON b.dataset = d.dataset AND b.as_of_date = r.as_of_date AND b.region = r.region
            WHERE d.region = r.region AND b.status IS DISTINCT FROM 'COMPLETE'),
           '[]'::jsonb) AS missing
FROM engine_runs r
WHERE r.phase = 'WAITING_FOR_DATA'
ORDER BY r.as_of_date, r.region, r.run_id;

-- name: check_recent_failures
-- Runs that turned FAILED within the window and are FAILED still: a run an operator
-- retried since has been dealt with. Served by engine_run_events_failed_idx.
SELECT r.run_id, r.as_of_date, r.region, max(e.at) AS failed_at, r.last_error
FROM engine_run_events e
JOIN engine_runs r ON r.run_id = e.run_id
WHERE e.to_phase = 'FAILED' AND e.kind = 'transition'
  AND e.at > CAST(:now AS timestamptz) - make_interval(secs => :window_s)
  AND e.at <= CAST(:now AS timestamptz)
  AND r.phase = 'FAILED'
GROUP BY r.run_id
ORDER BY failed_at, r.run_id;

-- name: check_regressed_batches
-- Required batches that are not COMPLETE for runs already past WAITING_FOR_DATA: the run
-- was (or is being) computed from data that is being rewritten or was withdrawn.
SELECT r.run_id, r.as_of_date, r.region, r.phase, b.dataset, b.status
FROM ingestion_batches b
JOIN region_datasets d ON d.region = b.region AND d.dataset = b.dataset
JOIN engine_runs r ON r.as_of_date = b.as_of_date AND r.region = b.region
WHERE b.status <> 'COMPLETE' AND r.phase <> 'WAITING_FOR_DATA'
ORDER BY r.as_of_date, r.region, b.dataset;

-- name: check_reactors
-- Each heartbeat row classified, then the newest row of each class with the class size:
-- 'live' heartbeats within the bound; within the lookback (a reactor was expected),
-- 'stopped' stopped cleanly and 'silent' went quiet; 'gone' was last seen before it.
SELECT DISTINCT ON (state)
       state, reactor_id, host, pid, last_seen_at, stopped_at,
       count(*) OVER (PARTITION BY state) AS reactors
FROM (
    SELECT h.*,
           CASE
               WHEN h.last_seen_at <= CAST(:now AS timestamptz)
                                      - make_interval(secs => :lookback_s) THEN 'gone'
               WHEN h.stopped_at IS NOT NULL THEN 'stopped'
               WHEN h.last_seen_at > CAST(:now AS timestamptz)
                                     - make_interval(secs => :silent_after_s) THEN 'live'
               ELSE 'silent'
           END AS state
    FROM reactor_heartbeats h
) classified
ORDER BY state, last_seen_at DESC, reactor_id;

-- name: check_deaf_listeners
-- Live reactors (as check_reactors counts them) whose listener cannot hear: they poll.
SELECT reactor_id, host, pid, listener_problem
FROM reactor_heartbeats
WHERE stopped_at IS NULL
  AND last_seen_at > CAST(:now AS timestamptz) - make_interval(secs => :silent_after_s)
  AND listener_hears IS FALSE
ORDER BY reactor_id;

-- name: check_notify_queue
-- The fraction of the server's NOTIFY queue in use (8 GB by default). A session that
-- LISTENs and never reads holds every notification since; at 1, every NOTIFY fails.
SELECT pg_notification_queue_usage() AS usage;

-- name: check_holds
-- Active holds, and the active runs they hold.
SELECT (SELECT count(*) FROM engine_run_holds WHERE released_at IS NULL) AS active_holds,
       (SELECT count(DISTINCT run_id) FROM engine_run_hold_coverage) AS runs_held;

-- name: check_stale_holds
-- Active holds placed longer ago than the limit, oldest first, with the runs they hold.
SELECT h.hold_id, h.region, h.phase, h.from_date, h.to_date, h.held_by, h.held_at, h.reason,
       CAST(:now AS timestamptz) - h.held_at AS age,
       (SELECT count(*) FROM engine_run_hold_coverage c WHERE c.hold_id = h.hold_id)
           AS runs_held
FROM engine_run_holds h
WHERE h.released_at IS NULL
  AND h.held_at < CAST(:now AS timestamptz) - make_interval(secs => :max_age_s)
ORDER BY h.held_at, h.hold_id;
