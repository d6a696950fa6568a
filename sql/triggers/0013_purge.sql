-- Retention on purpose (`prometheus runs purge --before D --reason R`). Before this file,
-- nothing could delete a run: its events' ON DELETE CASCADE ran into the append-only
-- trigger. Now a purge removes terminal runs (COMPLETED, FAILED) dated before a cutoff,
-- with their events and their reference results (ON DELETE CASCADE), and records itself
-- in engine_run_purges, which outlives what it deleted. Active runs are never purged.
--
-- Anything else stays refused, as before, to every session: DELETE of a run or of an
-- event (PX002), TRUNCATE, UPDATE of an event. The purge function passes the guards the
-- way prometheus_force_phase does (0011): it registers a ('purge', run) grant for each
-- run it has locked, in its own transaction, and removes them before it returns. The
-- same limits apply (the tables' owner or a superuser can switch triggers off; PUBLIC's
-- EXECUTE on the purge is revoked, grant it to the operators' role).
--
-- A table of your own that references engine_runs must say ON DELETE CASCADE (or be
-- cleaned first), or a purge that reaches its rows fails, and rolls back whole.

SELECT set_config('search_path', format('%I, pg_temp', current_schema()), true);

-- The rule, in one place: what a purge with this cutoff may remove.
CREATE FUNCTION prometheus_is_purgeable(p_phase text, p_as_of_date date, p_cutoff date)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$
    SELECT p_phase IN ('COMPLETED', 'FAILED') AND p_as_of_date < p_cutoff
$$;

CREATE FUNCTION prometheus_purge_runs(p_cutoff date, p_actor text, p_reason text)
RETURNS engine_run_purges
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    this_tx xid8 := pg_current_xact_id();
    runs bigint;
    events bigint;
    purge engine_run_purges;
BEGIN
    IF p_cutoff IS NULL OR coalesce(btrim(p_actor), '') = ''
       OR coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'a purge needs a cutoff date, an actor and a reason'
            USING ERRCODE = '22023';
    END IF;
    -- Lock first: a run retried meanwhile is active again, and the lock's re-check of
    -- the rule on the row as it is now leaves it out.
    WITH doomed AS (
        SELECT r.run_id FROM engine_runs r
        WHERE prometheus_is_purgeable(r.phase, r.as_of_date, p_cutoff)
        ORDER BY r.run_id
        FOR UPDATE
    )
    INSERT INTO engine_run_grants (txid, kind, run_id)
    SELECT this_tx, 'purge', run_id FROM doomed;

    SELECT count(*) INTO events
    FROM engine_run_events e
    JOIN engine_run_grants g ON g.run_id = e.run_id AND g.txid = this_tx AND g.kind = 'purge';

    DELETE FROM engine_runs r
    USING engine_run_grants g
    WHERE g.run_id = r.run_id AND g.txid = this_tx AND g.kind = 'purge';
    GET DIAGNOSTICS runs = ROW_COUNT;

    DELETE FROM engine_run_grants g WHERE g.txid = this_tx AND g.kind = 'purge';

    INSERT INTO engine_run_purges (actor, reason, cutoff, runs_purged, events_purged)
    VALUES (p_actor, p_reason, p_cutoff, runs, events)
    RETURNING * INTO purge;
    RETURN purge;
END
$$;

REVOKE EXECUTE ON FUNCTION prometheus_purge_runs(date, text, text) FROM PUBLIC;

CREATE FUNCTION engine_runs_deleted() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF prometheus_granted('purge', OLD.run_id, NULL) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'engine_runs keeps the history: delete old runs with `prometheus runs purge`'
        USING ERRCODE = 'PX002';
END
$$;

CREATE TRIGGER engine_runs_deleted
    BEFORE DELETE ON engine_runs
    FOR EACH ROW EXECUTE FUNCTION engine_runs_deleted();

-- Events go only with their run, in a purge.
CREATE OR REPLACE FUNCTION engine_run_events_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF TG_OP = 'DELETE' AND prometheus_granted('purge', OLD.run_id, NULL) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'engine_run_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'PX002';
END
$$;

CREATE FUNCTION engine_run_purges_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    RAISE EXCEPTION 'engine_run_purges is append-only (% refused)', TG_OP
        USING ERRCODE = 'PX002';
END
$$;

CREATE TRIGGER engine_run_purges_append_only
    BEFORE UPDATE OR DELETE ON engine_run_purges
    FOR EACH ROW EXECUTE FUNCTION engine_run_purges_append_only();

CREATE TRIGGER engine_run_purges_no_truncate
    BEFORE TRUNCATE ON engine_run_purges
    FOR EACH STATEMENT EXECUTE FUNCTION prometheus_refuse_truncate();
