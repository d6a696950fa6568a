-- Three corrections to the run triggers, as a new file (applied files are never edited).
--
-- 1. Times a transition is *made*, not when its transaction began: a phase transaction
--    lasts as long as its task, and `check --stuck-after` measures from phase_changed_at.
--    clock_timestamp() is the moment the row changes, a few microseconds before commit.
-- 2. engine_run_events is append-only: an audit trail that can be edited is not one. Only
--    an explicit override (prometheus.force = 'on') may touch it.
-- 3. A run moved back to WAITING_FOR_DATA (a retry or a forced set-phase) whose data is
--    already complete is made DATA_READY at once, as a newly created run is: nothing else
--    would ever look at it again. No pair lock, as for a created run (0005): a batch job
--    finishing concurrently waits for this row and then moves it itself.

CREATE OR REPLACE FUNCTION engine_runs_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    forced boolean := coalesce(prometheus_setting('prometheus.force') = 'on', false);
    changed_at timestamptz := clock_timestamp();
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.phase <> 'WAITING_FOR_DATA' AND NOT forced THEN
            RAISE EXCEPTION 'illegal transition: a run starts in WAITING_FOR_DATA, not %', NEW.phase
                USING ERRCODE = 'PX001';
        END IF;
        NEW.created_at := changed_at;
        NEW.updated_at := changed_at;
        NEW.phase_changed_at := changed_at;
        RETURN NEW;
    END IF;

    IF NEW.phase IS DISTINCT FROM OLD.phase THEN
        IF NOT forced AND NOT prometheus_is_legal_transition(OLD.phase, NEW.phase) THEN
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

CREATE FUNCTION engine_run_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(prometheus_setting('prometheus.force') = 'on', false) THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RAISE EXCEPTION 'engine_run_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'PX002';
END
$$;

CREATE TRIGGER engine_run_events_append_only
    BEFORE UPDATE OR DELETE ON engine_run_events
    FOR EACH ROW EXECUTE FUNCTION engine_run_events_append_only();

CREATE FUNCTION engine_runs_rewaiting() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF ingestion_is_ready(NEW.as_of_date, NEW.region) THEN
        PERFORM ingestion_set_ready(NEW.as_of_date, NEW.region, false);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER engine_runs_rewaiting
    AFTER UPDATE OF phase ON engine_runs
    FOR EACH ROW
    WHEN (NEW.phase = 'WAITING_FOR_DATA' AND OLD.phase IS DISTINCT FROM NEW.phase)
    EXECUTE FUNCTION engine_runs_rewaiting();
