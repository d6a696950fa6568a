-- Readiness, and every function of ours, no longer depend on the writer's session.
--
-- 1. The readiness lock was keyed on text, 'prometheus.readiness:' || region || ':' || day,
--    and a date turns into text through the session's DateStyle: a job on 'ISO, MDY' and
--    one on 'German, DMY' took two different locks for the same pair, neither saw the
--    other's batch, and the run never became ready. The key is now made of typed values:
--    the two-int advisory lock (hash of the region, day number), which no setting changes.
--    (Two regions whose hashes collide share a lock: they wait for each other, harmlessly.)
--
-- 2. Functions resolved table names through the caller's search_path, so a job whose
--    search_path put a schema of its own first (with a region_datasets of its own, say),
--    or a session with a temporary table of that name (pg_temp is searched first), made
--    the triggers read the wrong tables. Each function now runs with the search_path it
--    was created with: this schema, then pg_temp last (never first), whatever the caller
--    has set. Later files that create or replace a function must add
--    `SET search_path FROM CURRENT` after the same set_config as below (CREATE OR REPLACE
--    drops a SET clause it does not repeat); a test checks every function has it.
--
-- TimeZone: no trigger turns a timestamptz into a date or text; the json of a date is
-- ISO 8601 whatever DateStyle. Nothing else here reads a session setting but our own
-- prometheus.* context.

SELECT set_config('search_path', format('%I, pg_temp', current_schema()), true);

CREATE OR REPLACE FUNCTION ingestion_mark_ready(day date, reg text, ensure_run boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(
        hashtext('prometheus.readiness:' || reg),
        day - make_date(2000, 1, 1));

    IF ingestion_is_ready(day, reg) THEN
        PERFORM ingestion_set_ready(day, reg, ensure_run);
    END IF;
END
$$;

ALTER FUNCTION prometheus_setting(text) SET search_path FROM CURRENT;
ALTER FUNCTION prometheus_is_legal_transition(text, text) SET search_path FROM CURRENT;
ALTER FUNCTION engine_runs_guard() SET search_path FROM CURRENT;
ALTER FUNCTION engine_runs_audit_and_notify() SET search_path FROM CURRENT;
ALTER FUNCTION ingestion_is_ready(date, text) SET search_path FROM CURRENT;
ALTER FUNCTION ingestion_set_ready(date, text, boolean) SET search_path FROM CURRENT;
ALTER FUNCTION ingestion_batches_changed() SET search_path FROM CURRENT;
ALTER FUNCTION region_datasets_changed() SET search_path FROM CURRENT;
ALTER FUNCTION engine_runs_created() SET search_path FROM CURRENT;
ALTER FUNCTION engine_run_events_append_only() SET search_path FROM CURRENT;
ALTER FUNCTION engine_runs_rewaiting() SET search_path FROM CURRENT;
