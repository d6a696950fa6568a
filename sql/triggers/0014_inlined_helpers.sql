-- The hot path's helpers are inlined again. 0008 pinned the search_path of every
-- function; a SET clause keeps a SQL function from being inlined into its caller, and
-- one not inlined is parsed and planned anew on every call: three prometheus_setting
-- calls and a transition check per phase change cost more than the change itself
-- (about 100 microseconds more, measured). These helpers read no table and call only
-- built-ins (found in pg_catalog, searched first); inlined, they are parsed inside their
-- callers, whose search_path is pinned. A test keeps to this short list the functions
-- without a pinned search_path, and checks that they read no table.
--
-- prometheus_update_phase, which every phase change goes through, saves and restores
-- the audit context itself rather than through prometheus_set_context and
-- prometheus_restore_context: two function calls, each switching the search_path, were
-- a third of its cost. prometheus_restore_context becomes PL/pgSQL, which keeps its
-- plan per session (as SQL, not inlinable, it was planned on every call).

SELECT set_config('search_path', format('%I, pg_temp', current_schema()), true);

ALTER FUNCTION prometheus_setting(text) RESET search_path;
ALTER FUNCTION prometheus_is_legal_transition(text, text) RESET search_path;
ALTER FUNCTION prometheus_is_purgeable(text, date, date) RESET search_path;

CREATE OR REPLACE FUNCTION prometheus_restore_context(saved text[]) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM set_config('prometheus.actor', coalesce(saved[1], ''), true),
            set_config('prometheus.detail', coalesce(saved[2], ''), true),
            set_config('prometheus.notify', coalesce(saved[3], ''), true);
END
$$;

CREATE OR REPLACE FUNCTION prometheus_update_phase(
    p_run_id bigint, p_from_phase text, p_to_phase text,
    p_actor text, p_detail jsonb, p_notify boolean)
RETURNS SETOF engine_runs
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    saved_actor  text := current_setting('prometheus.actor', true);
    saved_detail text := current_setting('prometheus.detail', true);
    saved_notify text := current_setting('prometheus.notify', true);
    moved engine_runs;
BEGIN
    PERFORM set_config('prometheus.actor', p_actor, true),
            set_config('prometheus.detail', p_detail::text, true),
            set_config('prometheus.notify', CASE WHEN p_notify THEN 'on' ELSE 'off' END, true);
    UPDATE engine_runs SET phase = p_to_phase
    WHERE run_id = p_run_id AND phase = p_from_phase
    RETURNING * INTO moved;
    PERFORM set_config('prometheus.actor', coalesce(saved_actor, ''), true),
            set_config('prometheus.detail', coalesce(saved_detail, ''), true),
            set_config('prometheus.notify', coalesce(saved_notify, ''), true);
    IF moved.run_id IS NOT NULL THEN
        RETURN NEXT moved;
    END IF;
END
$$;
