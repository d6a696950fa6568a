-- Work is served in the order it became due. A run is due from the moment it entered its
-- phase (phase_changed_at) or, after a failed attempt, from the end of its backoff
-- (next_attempt_at, which a phase change clears). Claims take the run due longest
-- first, whatever its phase: after an outage, a run interrupted in the middle of its
-- pipeline goes before the runs made ready after it (0006 ordered by phase first, so
-- every newer DATA_READY run went before an older SIGNALS_DONE one).
--
-- A worker stepping its own run still rarely loses it to a peer between two phase
-- transactions: the phase it has just entered makes it the newest due run, the last
-- anyone else would claim.

DROP INDEX engine_runs_due_idx;

CREATE INDEX engine_runs_due_idx
    ON engine_runs ((coalesce(next_attempt_at, phase_changed_at)), run_id)
    WHERE phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE');
