-- name: insert_run
-- Create the run if it is missing; a concurrent creator wins quietly (ON CONFLICT).
-- Its count is not used: the statement's own triggers may move the new run on (to
-- DATA_READY when its data is already complete), so the caller reads it back.
SELECT prometheus_ensure_runs(
    ARRAY[CAST(:as_of_date AS date)], ARRAY[CAST(:region AS text)], :actor);

-- name: ensure_runs
-- Runs for these (date, region) pairs, missing ones created WAITING_FOR_DATA (closed
-- sessions by the calendar service, a backfill's range): one statement, in the readiness
-- trigger's lock order, burning no run ids on runs that exist (prometheus_ensure_runs).
-- A created run whose data is complete is DATA_READY at once (its insert's trigger).
-- Returns how many runs were created.
SELECT prometheus_ensure_runs(CAST(:dates AS date[]), CAST(:regions AS text[]), :actor);

-- name: find_run
-- Reads of a run say whether it is held (hold_id: the oldest active hold covering it).
SELECT * FROM engine_runs_with_holds WHERE as_of_date = :as_of_date AND region = :region;

-- name: get_run
SELECT * FROM engine_runs_with_holds WHERE run_id = :run_id;

-- name: lock_run
-- Wait for the run's row lock, then read it fresh: for a decision that must not race
-- another writer of the same run (`ensure --data-ready` against the readiness trigger).
-- Every run lock of ours is FOR NO KEY UPDATE: exclusive among claims, overrides and
-- phase changes, but never in the way of a foreign-key check (FOR KEY SHARE), such as
-- the batch_regressed event an ingestion job writes while the run's phase is running.
SELECT * FROM engine_runs WHERE run_id = :run_id FOR NO KEY UPDATE;

-- name: lock_run_for_override
-- An override decides on the run's current state, under its lock; NOWAIT, so it does
-- not queue behind a running phase: the operator is told the run is busy instead.
SELECT * FROM engine_runs WHERE as_of_date = :as_of_date AND region = :region
FOR NO KEY UPDATE NOWAIT;

-- name: claim_runs
-- Take these runs' row locks for the whole phase transaction (one run for `runs
-- advance`; the runs a reactor's worker is stepping, phase after phase). SKIP LOCKED: a
-- run locked by another process is that process's work, never waited for and never done
-- twice. NO KEY: a phase may last an hour, and writers that only reference the run (a
-- foreign key's FOR KEY SHARE) must not wait for it; see lock_run.
-- A held run is never claimed (no row, as for a run another process holds). The hold
-- test is engine_run_hold_coverage's rule, written out here and in claim_due_runs rather
-- than read through the view: planned on every claim where statements are not prepared
-- (behind a transaction pooler), the view's extra join costs more than the claim itself.
-- tests/integration/test_holds.py keeps the three equal.
-- The claim also asks the server to check every 2 s, for the rest of this transaction,
-- that its client is alive: a backend whose reactor was SIGKILLed while a task's
-- statement runs or waits on a lock then ends the transaction and frees the run at once.
-- Set per transaction, not at connect, so it holds behind a transaction pooler too;
-- and the server's pid is read here for the same reason (a phase past its timeout has
-- its session ended by pid, and a pooler's connection key names no backend).
SELECT r.*, coalesce(r.next_attempt_at <= now(), true) AS due,
       set_config('client_connection_check_interval', '2s', true) AS checks_client,
       pg_backend_pid() AS backend_pid
FROM engine_runs r
WHERE r.run_id = ANY (CAST(:run_ids AS bigint[]))
  AND NOT EXISTS (
      SELECT FROM engine_run_holds h
      WHERE h.released_at IS NULL AND h.region = r.region
        AND r.phase NOT IN ('COMPLETED', 'FAILED')
        AND (h.phase IS NULL OR h.phase = r.phase)
        AND (h.from_date IS NULL OR r.as_of_date >= h.from_date)
        AND (h.to_date IS NULL OR r.as_of_date <= h.to_date))
ORDER BY r.run_id
FOR NO KEY UPDATE SKIP LOCKED;

-- name: claim_due_runs
-- The runs due longest that nobody holds and no hold covers (see claim_runs), at most
-- :limit: how workers share work without ever colliding. A run is due from when it
-- entered its phase, or from the end of its backoff; served by engine_runs_due_idx in
-- that order, skipping rows other workers have locked. So after any gap, runs are served
-- in the order they became due, whatever their phase, and a run a worker is stepping
-- (just entered its phase: the newest) is left to that worker. :taken are the runs this
-- transaction has stepped already (a batch): a run moves on one phase per transaction.
-- It checks its client as claim_runs does.
SELECT r.*, true AS due,
       set_config('client_connection_check_interval', '2s', true) AS checks_client,
       pg_backend_pid() AS backend_pid
FROM engine_runs r
WHERE r.phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE')
  AND coalesce(r.next_attempt_at, r.phase_changed_at) <= now()
  AND r.run_id <> ALL (CAST(:taken AS bigint[]))
  AND NOT EXISTS (
      SELECT FROM engine_run_holds h
      WHERE h.released_at IS NULL AND h.region = r.region
        AND r.phase NOT IN ('COMPLETED', 'FAILED')
        AND (h.phase IS NULL OR h.phase = r.phase)
        AND (h.from_date IS NULL OR r.as_of_date >= h.from_date)
        AND (h.to_date IS NULL OR r.as_of_date <= h.to_date))
ORDER BY coalesce(r.next_attempt_at, r.phase_changed_at), r.run_id
LIMIT :limit
FOR NO KEY UPDATE SKIP LOCKED;

-- name: count_due_runs
-- Due and not held: what a worker could claim now.
SELECT count(*) FROM engine_runs_with_holds
WHERE phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE')
  AND coalesce(next_attempt_at, phase_changed_at) <= now()
  AND hold_id IS NULL;

-- name: update_phase
-- The guard trigger validates the move and the audit trigger records it, with who asks,
-- why, and whether to notify; the function puts the caller's context back after.
-- No row: the run left :from_phase meanwhile.
SELECT * FROM prometheus_update_phase(
    :run_id, :from_phase, :to_phase, :actor, CAST(:detail AS jsonb), :notify);

-- name: force_phase
-- The audited override's way past the transition table (see sql/triggers/0011).
SELECT * FROM prometheus_force_phase(:run_id, :to_phase, :actor, :reason, :override);

-- name: record_failed_attempt
-- A failed attempt is counted, explained and scheduled in one statement, with its event.
-- The backoff runs from the failure (clock_timestamp), not from the transaction's start:
-- a phase that failed after an hour must still wait its backoff.
WITH failed AS (
    UPDATE engine_runs
    SET attempts = :attempts,
        last_error = :error,
        next_attempt_at = clock_timestamp() + make_interval(secs => :retry_in_s)
    WHERE run_id = :run_id
    RETURNING run_id, phase
)
INSERT INTO engine_run_events (run_id, kind, from_phase, to_phase, actor, detail)
SELECT run_id, 'attempt_failed', phase, phase, :actor, CAST(:detail AS jsonb) FROM failed;

-- name: list_runs
SELECT * FROM engine_runs_with_holds
WHERE (CAST(:phase AS text) IS NULL OR phase = :phase)
  AND (CAST(:region AS text) IS NULL OR region = :region)
ORDER BY as_of_date, region;

-- name: list_active_runs
SELECT * FROM engine_runs_with_holds
WHERE phase NOT IN ('COMPLETED', 'FAILED')
ORDER BY as_of_date, region;

-- name: list_due_runs
-- `advance-all`: workable runs not backing off and not held, in the order they became
-- due (as claim_due_runs). Served by engine_runs_due_idx, so it costs what is due, not
-- what is active.
SELECT run_id FROM engine_runs_with_holds
WHERE phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE')
  AND coalesce(next_attempt_at, phase_changed_at) <= now()
  AND hold_id IS NULL
ORDER BY coalesce(next_attempt_at, phase_changed_at), run_id
LIMIT :limit;

-- name: next_retry_in
-- Seconds until the earliest backoff ends, so the sweeper can wake for it.
SELECT extract(epoch FROM min(coalesce(next_attempt_at, phase_changed_at)) - now()) AS seconds
FROM engine_runs
WHERE phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE')
  AND coalesce(next_attempt_at, phase_changed_at) > now();

-- name: run_due_in
-- Seconds until one run's backoff ends, on the database's clock (no row: it is not
-- backing off), so that a driver waiting for it never compares with a host's clock.
SELECT extract(epoch FROM next_attempt_at - now()) AS seconds
FROM engine_runs
WHERE run_id = :run_id AND next_attempt_at > now();

-- name: run_events
SELECT event_id, run_id, kind, from_phase, to_phase, at, actor, detail
FROM engine_run_events
WHERE run_id = :run_id
ORDER BY event_id;

-- name: phase_failed_in
-- Where a FAILED run was when it failed: the retry override sends it back there.
SELECT from_phase FROM engine_run_events
WHERE run_id = :run_id AND kind = 'transition' AND to_phase = 'FAILED'
ORDER BY event_id DESC
LIMIT 1;

-- name: backend_pid
-- This transaction's server process (behind a pooler, not the connection's startup key).
SELECT pg_backend_pid();

-- name: end_session
-- Ends a timed-out phase's session: the server rolls its transaction back and frees the
-- run's row lock, which a task stuck outside the database would otherwise hold forever.
-- True once that backend is gone (ended here, waiting up to :wait_ms for it to exit, or
-- gone already); false if it lives on (not ours to end, or slow to exit).
SELECT pg_terminate_backend(:pid, CAST(:wait_ms AS bigint))
       OR NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :pid);

-- name: waits_for_lock
-- Whether that backend is queued for a lock (the write-up of a timed-out attempt, before
-- the stuck session that holds the run is ended).
SELECT cardinality(pg_blocking_pids(:pid)) > 0;

-- name: set_lock_timeout
-- Bound this transaction's lock waits (milliseconds): a write-up that cannot get the run
-- soon gives up rather than queue behind another process's phase.
SELECT set_config('lock_timeout', CAST(:ms AS text) || 'ms', true);

-- name: purge_preview
-- What `runs purge --dry-run` would remove (the rule: prometheus_is_purgeable).
WITH doomed AS (
    SELECT run_id FROM engine_runs
    WHERE prometheus_is_purgeable(phase, as_of_date, CAST(:before AS date))
)
SELECT (SELECT count(*) FROM doomed) AS runs_purged,
       (SELECT count(*) FROM engine_run_events WHERE run_id IN (SELECT run_id FROM doomed))
           AS events_purged;

-- name: purge_runs
-- Deletes terminal runs dated before :before, their events and results, and returns the
-- record of the purge (sql/triggers/0013_purge.sql).
SELECT * FROM prometheus_purge_runs(:before, :actor, :reason);
