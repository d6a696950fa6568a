-- Holds: an operator stops a region (or one of its phases, or a range of its dates) from
-- advancing for a while, say while bad upstream data is fixed ("hold the books"), and
-- lets it go again. A held run is never claimed: every claim reads engine_runs through
-- engine_runs_with_holds and takes only runs whose hold_id is NULL, so the reactor, `runs
-- advance`, `advance-all`, the seed's scripts and the orchestrator helpers all obey it.
--
-- A hold's row is its audit record: who placed it, why and when, and who released it,
-- why and when (sql/triggers/0031_holds.sql keeps it that way: a hold is never edited
-- or deleted, only released once).

CREATE TABLE engine_run_holds (
    hold_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region         text        NOT NULL CHECK (region <> ''),
    -- NULL: every phase. Otherwise the phase whose task must not start (a run waits in
    -- it): UNIVERSES_DONE holds the books.
    phase          text        CHECK (phase IN ('DATA_READY', 'SIGNALS_DONE', 'UNIVERSES_DONE')),
    from_date      date,       -- NULL: no lower bound
    to_date        date,       -- NULL: no upper bound
    reason         text        NOT NULL CHECK (btrim(reason) <> ''),
    held_by        text        NOT NULL CHECK (btrim(held_by) <> ''),
    held_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    released_by    text        CHECK (btrim(released_by) <> ''),
    released_at    timestamptz,
    release_reason text        CHECK (btrim(release_reason) <> ''),
    CHECK (from_date <= to_date),
    CHECK ((released_at IS NULL) = (released_by IS NULL)
           AND (released_at IS NULL) = (release_reason IS NULL))
);

-- One active hold per scope: holding what is held already is a no-op, and releasing "the
-- hold on US, SIGNALS_DONE, these dates" names exactly one. It also serves every lookup
-- of a region's active holds (region first).
CREATE UNIQUE INDEX engine_run_holds_active_idx ON engine_run_holds (
    region, coalesce(phase, ''), coalesce(from_date, '-infinity'::date),
    coalesce(to_date, 'infinity'::date))
WHERE released_at IS NULL;

-- Which active hold covers which active run: the rule, written once. A terminal run is
-- covered by nothing (there is nothing left to hold).
CREATE VIEW engine_run_hold_coverage AS
SELECT h.hold_id, r.run_id
FROM engine_run_holds h
JOIN engine_runs r
  ON r.region = h.region
 AND (h.phase IS NULL OR r.phase = h.phase)
 AND (h.from_date IS NULL OR r.as_of_date >= h.from_date)
 AND (h.to_date IS NULL OR r.as_of_date <= h.to_date)
WHERE h.released_at IS NULL
  AND r.phase NOT IN ('COMPLETED', 'FAILED');

-- engine_runs with the oldest active hold that covers each run (NULL: not held). Claims
-- select from it with FOR NO KEY UPDATE SKIP LOCKED, which locks the engine_runs rows
-- (the view is inlined; the holds are read, not locked). With no active hold, the test
-- costs one probe of an empty index per candidate run.
-- (`r.*` is expanded when the view is created: a migration that adds a column to
-- engine_runs must recreate this view for the column to show through it.)
CREATE VIEW engine_runs_with_holds AS
SELECT r.*,
       (SELECT min(c.hold_id) FROM engine_run_hold_coverage c WHERE c.run_id = r.run_id)
           AS hold_id
FROM engine_runs r;
