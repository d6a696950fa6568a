-- The audit trail and the force path, made to hold against ordinary sessions.
--
-- Before: any session could set_config('prometheus.force', 'on', ...) and then make any
-- transition, or edit and delete engine_run_events; TRUNCATE was not refused; and the
-- settings the update_phase query wrote (actor, detail, force, notify) lasted until
-- commit, so after one forced write every later write of that transaction was forced
-- too, and audited with the first one's actor and reason.
--
-- Now:
-- * prometheus.force is read by nothing: setting it changes nothing.
-- * A forced move is prometheus_force_phase(run_id, to_phase, actor, reason, override),
--   which only the audited overrides call (prometheus/pipeline/overrides.py). It refuses
--   to work without an actor and a reason, writes both to the audit row, and for its one
--   UPDATE registers a grant for exactly that run and phase in engine_run_grants, which
--   it removes right after. The guard honours a grant only if this very transaction
--   wrote it (txid), so nothing set earlier, elsewhere or by mistake can switch it on.
-- * Every write of ours sets its audit context (actor, detail, notify) and puts the
--   caller's back after (prometheus_update_phase, prometheus_force_phase,
--   prometheus_ensure_runs), as ingestion_set_ready does: a write never inherits the
--   context of the one before it.
-- * engine_run_events refuses UPDATE, DELETE and TRUNCATE. TRUNCATE engine_runs is refused
--   too: with CASCADE it would erase the history silently.
--
-- What this protects against: a stray or leftover setting, a script or a person at psql
-- rewriting history or making an illegal move by mistake, a bug in a writer; every
-- forced move leaves an audit row with who and why.
-- What it does not: the tables' owner or a superuser can always ALTER TABLE ... DISABLE
-- TRIGGER, drop a trigger, or write engine_run_grants. Where that matters, let the
-- application's roles have DML on the tables but not own them (engine_run_grants is the
-- owner's alone), and grant EXECUTE on prometheus_force_phase to the operators' role
-- only: it runs as its owner (SECURITY DEFINER), and PUBLIC's EXECUTE is revoked below.

SELECT set_config('search_path', format('%I, pg_temp', current_schema()), true);

-- Whether this transaction's audited function registered the grant (see above).
-- SECURITY DEFINER, so a role without access to engine_run_grants gets "no", not an error.
CREATE FUNCTION prometheus_granted(p_kind text, p_run_id bigint, p_to_phase text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
    SELECT EXISTS (
        SELECT 1 FROM engine_run_grants g
        WHERE g.txid = pg_current_xact_id_if_assigned()
          AND g.kind = p_kind
          AND g.run_id = p_run_id
          AND g.to_phase IS NOT DISTINCT FROM p_to_phase)
$$;

-- The audit context for the next write; returns what it replaced, to give back to
-- prometheus_restore_context once the write (and its triggers) is done.
CREATE FUNCTION prometheus_set_context(p_actor text, p_detail jsonb, p_notify boolean)
RETURNS text[]
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    saved text[] := ARRAY[current_setting('prometheus.actor', true),
                          current_setting('prometheus.detail', true),
                          current_setting('prometheus.notify', true)];
BEGIN
    PERFORM set_config('prometheus.actor', p_actor, true),
            set_config('prometheus.detail', p_detail::text, true),
            set_config('prometheus.notify', CASE WHEN p_notify THEN 'on' ELSE 'off' END, true);
    RETURN saved;
END
$$;

CREATE FUNCTION prometheus_restore_context(saved text[]) RETURNS void
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    SELECT set_config('prometheus.actor', coalesce(saved[1], ''), true),
           set_config('prometheus.detail', coalesce(saved[2], ''), true),
           set_config('prometheus.notify', coalesce(saved[3], ''), true)
$$;

-- update_phase: a validated move from the phase the caller read to the next one; no row
-- if the run left that phase meanwhile.
CREATE FUNCTION prometheus_update_phase(
    p_run_id bigint, p_from_phase text, p_to_phase text,
    p_actor text, p_detail jsonb, p_notify boolean)
RETURNS SETOF engine_runs
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    saved text[] := prometheus_set_context(p_actor, p_detail, p_notify);
    moved engine_runs;
BEGIN
    UPDATE engine_runs SET phase = p_to_phase
    WHERE run_id = p_run_id AND phase = p_from_phase
    RETURNING * INTO moved;
    PERFORM prometheus_restore_context(saved);
    IF moved.run_id IS NOT NULL THEN
        RETURN NEXT moved;
    END IF;
END
$$;

-- The one way past the transition table: any run to any phase, audited with who and
-- why. The caller decides (overrides.py, under the run's lock); this records and moves.
CREATE FUNCTION prometheus_force_phase(
    p_run_id bigint, p_to_phase text, p_actor text, p_reason text, p_override text)
RETURNS SETOF engine_runs
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
    saved text[];
    moved engine_runs;
BEGIN
    IF coalesce(btrim(p_actor), '') = '' OR coalesce(btrim(p_reason), '') = ''
       OR coalesce(btrim(p_override), '') = '' THEN
        RAISE EXCEPTION 'a forced move needs an actor, a reason and the override''s name'
            USING ERRCODE = '22023';
    END IF;
    saved := prometheus_set_context(
        p_actor, jsonb_build_object('override', p_override, 'reason', p_reason), true);
    INSERT INTO engine_run_grants (kind, run_id, to_phase) VALUES ('force', p_run_id, p_to_phase);
    UPDATE engine_runs SET phase = p_to_phase WHERE run_id = p_run_id RETURNING * INTO moved;
    DELETE FROM engine_run_grants
    WHERE txid = pg_current_xact_id() AND kind = 'force' AND run_id = p_run_id;
    PERFORM prometheus_restore_context(saved);
    IF moved.run_id IS NOT NULL THEN
        RETURN NEXT moved;
    END IF;
END
$$;

REVOKE EXECUTE ON FUNCTION prometheus_force_phase(bigint, text, text, text, text) FROM PUBLIC;

-- Runs for these (date, region) pairs, created WAITING_FOR_DATA if missing, audited as
-- p_actor. One statement in (as_of_date, region) order, the order the readiness trigger
-- locks pairs in, so it cannot deadlock with a backfill; pairs that exist are filtered
-- out first, so asking again (every sweep does) uses up no run ids on conflicts.
CREATE FUNCTION prometheus_ensure_runs(p_dates date[], p_regions text[], p_actor text)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    saved text[] := prometheus_set_context(p_actor, '{}'::jsonb, true);
BEGIN
    INSERT INTO engine_runs (as_of_date, region)
    SELECT w.as_of_date, w.region
    FROM (SELECT DISTINCT d AS as_of_date, r AS region
          FROM unnest(p_dates, p_regions) AS u (d, r)) w
    WHERE NOT EXISTS (
        SELECT 1 FROM engine_runs e WHERE e.as_of_date = w.as_of_date AND e.region = w.region)
    ORDER BY w.as_of_date, w.region
    ON CONFLICT (as_of_date, region) DO NOTHING;
    PERFORM prometheus_restore_context(saved);
END
$$;

CREATE OR REPLACE FUNCTION engine_runs_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    changed_at timestamptz := clock_timestamp();
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.phase <> 'WAITING_FOR_DATA' THEN
            RAISE EXCEPTION 'illegal transition: a run starts in WAITING_FOR_DATA, not %', NEW.phase
                USING ERRCODE = 'PX001';
        END IF;
        NEW.created_at := changed_at;
        NEW.updated_at := changed_at;
        NEW.phase_changed_at := changed_at;
        RETURN NEW;
    END IF;

    IF NEW.phase IS DISTINCT FROM OLD.phase THEN
        -- The grant is looked up only for a move the table refuses: the hot path's legal
        -- moves cost nothing more.
        IF NOT prometheus_is_legal_transition(OLD.phase, NEW.phase)
           AND NOT prometheus_granted('force', OLD.run_id, NEW.phase) THEN
            RAISE EXCEPTION 'illegal transition: % -> % (run %)', OLD.phase, NEW.phase, OLD.run_id
                USING ERRCODE = 'PX001';
        END IF;
        NEW.phase_changed_at := changed_at;
        -- attempts, backoff and the error belong to the phase being left; a run that
        -- FAILED keeps them, so an operator sees why.
        IF NEW.phase <> 'FAILED' THEN
            NEW.attempts := 0;
            NEW.last_error := NULL;
        END IF;
        NEW.next_attempt_at := NULL;
    END IF;
    NEW.updated_at := changed_at;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION engine_run_events_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    RAISE EXCEPTION 'engine_run_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'PX002';
END
$$;

CREATE FUNCTION prometheus_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    RAISE EXCEPTION '% holds the audit history: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'PX002';
END
$$;

CREATE TRIGGER engine_run_events_no_truncate
    BEFORE TRUNCATE ON engine_run_events
    FOR EACH STATEMENT EXECUTE FUNCTION prometheus_refuse_truncate();

CREATE TRIGGER engine_runs_no_truncate
    BEFORE TRUNCATE ON engine_runs
    FOR EACH STATEMENT EXECUTE FUNCTION prometheus_refuse_truncate();
