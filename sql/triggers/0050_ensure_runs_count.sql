-- prometheus_ensure_runs says how many runs it created. It returned void, so its callers
-- had only the statement's row count, which is 1 for any SELECT of a function: the
-- reactor's calendar service logged "calendar_runs.created runs=1" every round, whether
-- or not a run was created. The body is 0011's; only the result is new (a function's
-- result type cannot change in place: DROP, then CREATE).

SELECT set_config('search_path', format('%I, pg_temp', current_schema()), true);

DROP FUNCTION prometheus_ensure_runs(date[], text[], text);

-- Runs for these (date, region) pairs, created WAITING_FOR_DATA if missing, audited as
-- p_actor; returns how many it created. One statement in (as_of_date, region) order, the
-- order the readiness trigger locks pairs in, so it cannot deadlock with a backfill;
-- pairs that exist are filtered out first, so asking again (every calendar round does)
-- uses up no run ids on conflicts.
CREATE FUNCTION prometheus_ensure_runs(p_dates date[], p_regions text[], p_actor text)
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    saved text[] := prometheus_set_context(p_actor, '{}'::jsonb, true);
    created integer;
BEGIN
    INSERT INTO engine_runs (as_of_date, region)
    SELECT w.as_of_date, w.region
    FROM (SELECT DISTINCT d AS as_of_date, r AS region
          FROM unnest(p_dates, p_regions) AS u (d, r)) w
    WHERE NOT EXISTS (
        SELECT 1 FROM engine_runs e WHERE e.as_of_date = w.as_of_date AND e.region = w.region)
    ORDER BY w.as_of_date, w.region
    ON CONFLICT (as_of_date, region) DO NOTHING;
    GET DIAGNOSTICS created = ROW_COUNT;
    PERFORM prometheus_restore_context(saved);
    RETURN created;
END
$$;
