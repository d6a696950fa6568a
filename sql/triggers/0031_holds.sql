-- Holds keep their history, and their release wakes the reactors.
--
-- * A hold is never edited or deleted: the one change allowed is its release, once,
--   with who and why (the database stamps when). TRUNCATE is refused too.
-- * A statement that releases holds sends one NOTIFY on prometheus_holds, payload keys
--   only: {"hold_id": the first released, "hold_count": how many}. Reactors LISTEN on it
--   and look for due work at once: a run that was held and is due advances within
--   milliseconds of the release's commit, not at the next sweep. Placing a hold
--   notifies nobody (there is nothing new to do).

SELECT set_config('search_path', format('%I, pg_temp', current_schema()), true);

CREATE FUNCTION engine_run_holds_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.released_at IS NULL
       AND NEW.released_by IS NOT NULL
       AND (NEW.hold_id, NEW.region, NEW.phase, NEW.from_date, NEW.to_date, NEW.reason,
            NEW.held_by, NEW.held_at)
           IS NOT DISTINCT FROM
           (OLD.hold_id, OLD.region, OLD.phase, OLD.from_date, OLD.to_date, OLD.reason,
            OLD.held_by, OLD.held_at) THEN
        NEW.released_at := clock_timestamp();
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'engine_run_holds keeps its history: a hold is only ever released, once (% refused)', TG_OP
        USING ERRCODE = 'PX002';
END
$$;

CREATE TRIGGER engine_run_holds_guard
    BEFORE UPDATE OR DELETE ON engine_run_holds
    FOR EACH ROW EXECUTE FUNCTION engine_run_holds_guard();

CREATE TRIGGER engine_run_holds_no_truncate
    BEFORE TRUNCATE ON engine_run_holds
    FOR EACH STATEMENT EXECUTE FUNCTION prometheus_refuse_truncate();

CREATE FUNCTION engine_run_holds_released() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    first_id bigint;
    released bigint;
BEGIN
    SELECT min(hold_id), count(*) INTO first_id, released FROM released_rows;
    IF released > 0 THEN
        PERFORM pg_notify('prometheus_holds', json_build_object(
            'hold_id', first_id,
            'hold_count', released
        )::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER engine_run_holds_released
    AFTER UPDATE ON engine_run_holds
    REFERENCING NEW TABLE AS released_rows
    FOR EACH STATEMENT EXECUTE FUNCTION engine_run_holds_released();
