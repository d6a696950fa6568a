-- The state machine's guard, its audit trail and its notifications, in the database
-- itself, so that every writer (engine, CLI, psql by hand) obeys the same rules.
--
-- Writers pass context through transaction-local settings:
--   prometheus.actor  who asks (reactor id, CLI user); default 'db'
--   prometheus.detail jsonb for the audit row (reason, duration, error)
--   prometheus.force  'on' lets an audited override make any transition
--   prometheus.notify 'off' when the writer keeps stepping the run itself,
--                     so nobody else needs waking (a NOTIFY commit is costly)

CREATE FUNCTION prometheus_setting(name text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting(name, true), '')
$$;

CREATE FUNCTION prometheus_is_legal_transition(from_phase text, to_phase text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (from_phase, to_phase) IN (
        ('WAITING_FOR_DATA', 'DATA_READY'),
        ('DATA_READY', 'SIGNALS_DONE'),
        ('SIGNALS_DONE', 'UNIVERSES_DONE'),
        ('UNIVERSES_DONE', 'COMPLETED'),
        ('WAITING_FOR_DATA', 'FAILED'),
        ('DATA_READY', 'FAILED'),
        ('SIGNALS_DONE', 'FAILED'),
        ('UNIVERSES_DONE', 'FAILED')
    )
$$;

CREATE FUNCTION engine_runs_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    forced boolean := coalesce(prometheus_setting('prometheus.force') = 'on', false);
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.phase <> 'WAITING_FOR_DATA' AND NOT forced THEN
            RAISE EXCEPTION 'illegal transition: a run starts in WAITING_FOR_DATA, not %', NEW.phase
                USING ERRCODE = 'PX001';
        END IF;
        NEW.phase_changed_at := now();
        RETURN NEW;
    END IF;

    IF NEW.phase IS DISTINCT FROM OLD.phase THEN
        IF NOT forced AND NOT prometheus_is_legal_transition(OLD.phase, NEW.phase) THEN
            RAISE EXCEPTION 'illegal transition: % -> % (run %)', OLD.phase, NEW.phase, OLD.run_id
                USING ERRCODE = 'PX001';
        END IF;
        NEW.phase_changed_at := now();
        -- attempts, backoff and the error belong to the phase being left; a run that
        -- FAILED keeps them, so an operator sees why.
        IF NEW.phase <> 'FAILED' THEN
            NEW.attempts := 0;
            NEW.last_error := NULL;
        END IF;
        NEW.next_attempt_at := NULL;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER engine_runs_guard
    BEFORE INSERT OR UPDATE ON engine_runs
    FOR EACH ROW EXECUTE FUNCTION engine_runs_guard();

CREATE FUNCTION engine_runs_audit_and_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.phase IS NOT DISTINCT FROM OLD.phase THEN
        RETURN NULL;
    END IF;

    INSERT INTO engine_run_events (run_id, kind, from_phase, to_phase, actor, detail)
    VALUES (
        NEW.run_id,
        'transition',
        CASE WHEN TG_OP = 'UPDATE' THEN OLD.phase END,
        NEW.phase,
        coalesce(prometheus_setting('prometheus.actor'), 'db'),
        coalesce(prometheus_setting('prometheus.detail')::jsonb, '{}'::jsonb)
    );

    IF coalesce(prometheus_setting('prometheus.notify'), 'on') <> 'off' THEN
        PERFORM pg_notify('prometheus_engine_runs', json_build_object(
            'run_id', NEW.run_id,
            'as_of_date', NEW.as_of_date,
            'region', NEW.region,
            'phase', NEW.phase
        )::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER engine_runs_audit_and_notify
    AFTER INSERT OR UPDATE OF phase ON engine_runs
    FOR EACH ROW EXECUTE FUNCTION engine_runs_audit_and_notify();
