-- `prometheus web`: what the operations console reads. Read-only, and cheap enough to run
-- on every page view and every live refresh.

-- name: web_overview_runs
-- The runs of a window of dates, with what the grid shows per cell: how long the run has
-- been processing (from its data being declared ready, the first time, to its end or to
-- now), how long until its next attempt, and for a waiting run the required datasets not
-- yet COMPLETE, and whether a hold keeps it from advancing. The lookups are served by
-- engine_run_events_run_idx and the batches' key, so the cost follows the window, not
-- the history.
SELECT r.run_id, r.as_of_date, r.region, r.phase, r.attempts,
       r.last_error IS NOT NULL AS has_error,
       CASE WHEN r.phase <> 'WAITING_FOR_DATA' THEN CAST(extract(epoch FROM
           CASE WHEN r.phase IN ('COMPLETED', 'FAILED') THEN r.phase_changed_at ELSE now() END
           - (SELECT min(e.at) FROM engine_run_events e
              WHERE e.run_id = r.run_id AND e.kind = 'transition'
                AND e.to_phase = 'DATA_READY')) AS double precision)
       END AS duration_s,
       CASE WHEN r.next_attempt_at > now()
            THEN CAST(extract(epoch FROM r.next_attempt_at - now()) AS double precision)
       END AS retry_in_s,
       CASE WHEN r.phase = 'WAITING_FOR_DATA' THEN
           ARRAY(SELECT d.dataset FROM region_datasets d
                 LEFT JOIN ingestion_batches b
                   ON b.dataset = d.dataset AND b.as_of_date = r.as_of_date
                  AND b.region = r.region
                 WHERE d.region = r.region AND b.status IS DISTINCT FROM 'COMPLETE'
                 ORDER BY d.dataset)
       END AS missing,
       r.hold_id IS NOT NULL AS held
FROM engine_runs_with_holds r
WHERE r.as_of_date BETWEEN :start AND :end;

-- name: web_reactors
-- Reactors heard from within the lookback, newest first, classified as `check` does:
-- 'stopped' (cleanly), 'live' (heartbeat within the bound) or 'silent'; with whether
-- each one's listener hears (NULL: not proven yet, or a reactor that does not report it).
SELECT h.reactor_id, h.host, h.pid, h.started_at, h.last_seen_at, h.stopped_at,
       now() - h.last_seen_at AS age,
       h.listener_hears AS listening, h.listener_problem,
       CASE
           WHEN h.stopped_at IS NOT NULL THEN 'stopped'
           WHEN h.last_seen_at > now() - make_interval(secs => :silent_after_s) THEN 'live'
           ELSE 'silent'
       END AS state
FROM reactor_heartbeats h
WHERE h.last_seen_at > now() - make_interval(secs => :lookback_s)
ORDER BY h.stopped_at IS NOT NULL, h.last_seen_at DESC, h.reactor_id
LIMIT :limit;

-- name: web_run_batches
-- The batches of a run's date and region: every dataset the region requires (with no
-- batch yet: status NULL) and any other batch written for that date and region.
SELECT coalesce(d.dataset, b.dataset) AS dataset, d.dataset IS NOT NULL AS required,
       b.status, b.row_count, b.started_at, b.completed_at
FROM (SELECT dataset FROM region_datasets WHERE region = :region) d
FULL JOIN (SELECT * FROM ingestion_batches WHERE as_of_date = :as_of_date AND region = :region) b
  ON b.dataset = d.dataset
ORDER BY 1;

-- name: web_runs_page
-- One page of runs, newest date first, with the number of runs matching the filters.
SELECT r.*, count(*) OVER () AS total
FROM engine_runs r
WHERE (CAST(:phase AS text) IS NULL OR r.phase = :phase)
  AND (CAST(:region AS text) IS NULL OR r.region = :region)
  AND (CAST(:date_from AS date) IS NULL OR r.as_of_date >= :date_from)
  AND (CAST(:date_to AS date) IS NULL OR r.as_of_date <= :date_to)
ORDER BY r.as_of_date DESC, r.region, r.run_id
LIMIT :limit OFFSET :offset;

-- name: web_version
-- Changes to what the pages show, in one cheap row: every run created, phase change and
-- failed attempt writes an audit event (so the newest event id moves, read from its key);
-- every batch written moves the batches' change_id (a dataset arriving for a run that
-- still waits writes no event, but its cell's missing datasets change); a hold placed or
-- released changes the holds' figures; reactors starting, stopping, or their listener
-- turning deaf or hearing again change the heartbeat figures. Polled while browsers
-- watch, because a reactor stepping its own run announces only COMPLETED and FAILED, and
-- because the console's LISTEN may be down. (An id taken by a transaction that commits
-- after a later one's is seen at the next change, or at the pages' 30 s refresh.)
SELECT (SELECT coalesce(max(event_id), 0) FROM engine_run_events) AS last_event_id,
       (SELECT coalesce(max(change_id), 0) FROM ingestion_batches) AS last_batch_change,
       (SELECT coalesce(max(hold_id), 0) FROM engine_run_holds) AS last_hold_id,
       (SELECT count(released_at) FROM engine_run_holds) AS released_holds,
       h.reactors, h.stopped, h.hearing, h.last_started_at
FROM (SELECT count(*) AS reactors, count(stopped_at) AS stopped,
             count(*) FILTER (WHERE listener_hears) AS hearing,
             max(started_at) AS last_started_at
      FROM reactor_heartbeats) h;
