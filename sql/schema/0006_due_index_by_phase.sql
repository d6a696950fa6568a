-- Workers claim due runs oldest first, and among equals a run's *first* phase before
-- later ones ('DATA_READY' < 'SIGNALS_DONE' < 'UNIVERSES_DONE' as text). A worker that
-- keeps stepping its own run then rarely loses it to a peer's claim in the instant
-- between two of its phase transactions, which cost a wasted claim each.

DROP INDEX engine_runs_due_idx;

CREATE INDEX engine_runs_due_idx
    ON engine_runs ((coalesce(next_attempt_at, '-infinity'::timestamptz)), phase, run_id)
    WHERE phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE');
