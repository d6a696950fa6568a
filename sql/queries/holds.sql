-- Holds (sql/schema/0030_engine_run_holds.sql): placed, released, read. Every claim
-- leaves a held run alone (runs.sql: claim_runs, claim_due_runs).

-- name: place_hold
-- A new hold, unless an active one has exactly this scope (then no row: the caller reads
-- that one). The conflict target is engine_run_holds_active_idx.
INSERT INTO engine_run_holds (region, phase, from_date, to_date, reason, held_by)
VALUES (:region, CAST(:phase AS text), CAST(:from_date AS date), CAST(:to_date AS date),
        :reason, :actor)
ON CONFLICT (region, coalesce(phase, ''), coalesce(from_date, '-infinity'::date),
             coalesce(to_date, 'infinity'::date))
    WHERE released_at IS NULL
DO NOTHING
RETURNING hold_id;

-- name: active_hold_of_scope
SELECT hold_id FROM engine_run_holds
WHERE released_at IS NULL
  AND region = :region
  AND phase IS NOT DISTINCT FROM CAST(:phase AS text)
  AND from_date IS NOT DISTINCT FROM CAST(:from_date AS date)
  AND to_date IS NOT DISTINCT FROM CAST(:to_date AS date);

-- name: release_holds
-- The database stamps released_at (its clock) and notifies the reactors
-- (sql/triggers/0031_holds.sql). Returns the holds this statement released.
UPDATE engine_run_holds
SET released_by = :actor, release_reason = :reason
WHERE hold_id = ANY (CAST(:hold_ids AS bigint[])) AND released_at IS NULL
RETURNING hold_id;

-- name: active_hold_ids
SELECT hold_id FROM engine_run_holds
WHERE released_at IS NULL AND (CAST(:region AS text) IS NULL OR region = :region)
ORDER BY hold_id;

-- name: holds_of_run
SELECT hold_id FROM engine_run_hold_coverage WHERE run_id = :run_id ORDER BY hold_id;

-- name: holds_by_id
-- Holds with how many active runs each covers now.
SELECT h.*,
       (SELECT count(*) FROM engine_run_hold_coverage c WHERE c.hold_id = h.hold_id)
           AS runs_held
FROM engine_run_holds h
WHERE h.hold_id = ANY (CAST(:hold_ids AS bigint[]))
ORDER BY h.hold_id;
