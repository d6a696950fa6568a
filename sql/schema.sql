-- The current schema of Prometheus engine runs, whole: every migration in sql/schema/
-- and sql/triggers/ applied, as pg_dump --schema-only shows it (cleaned). For reading;
-- not a migration (`prometheus db upgrade` applies the numbered files only, and records
-- them). After adding a migration, regenerate it:
--
--     python -m tests.support.schema_dump > sql/schema.sql
--
-- tests/integration/test_schema_file.py fails while this file and the migrations differ.

SET check_function_bodies = false;

CREATE FUNCTION public.engine_run_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF TG_OP = 'DELETE' AND prometheus_granted('purge', OLD.run_id, NULL) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'engine_run_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'PX002';
END
$$;

CREATE FUNCTION public.engine_run_holds_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
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

CREATE FUNCTION public.engine_run_holds_released() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    first_id bigint;
    released bigint;
BEGIN
    SELECT min(hold_id), count(*) INTO first_id, released FROM released_rows;
    IF released > 0 THEN
        PERFORM prometheus_notify('prometheus_holds', json_build_object(
            'hold_id', first_id,
            'hold_count', released
        )::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.engine_run_purges_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RAISE EXCEPTION 'engine_run_purges is append-only (% refused)', TG_OP
        USING ERRCODE = 'PX002';
END
$$;

CREATE FUNCTION public.engine_runs_audit_and_notify() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
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
        PERFORM prometheus_notify('prometheus_engine_runs', json_build_object(
            'run_id', NEW.run_id,
            'as_of_date', NEW.as_of_date,
            'region', left(NEW.region, 64),
            'phase', NEW.phase
        )::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.engine_runs_created() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    created record;
BEGIN
    FOR created IN
        SELECT as_of_date, region FROM new_runs
        WHERE phase = 'WAITING_FOR_DATA' AND ingestion_is_ready(as_of_date, region)
        ORDER BY as_of_date, region
    LOOP
        PERFORM ingestion_set_ready(created.as_of_date, created.region, false);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.engine_runs_deleted() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF prometheus_granted('purge', OLD.run_id, NULL) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'engine_runs keeps the history: delete old runs with `prometheus runs purge`'
        USING ERRCODE = 'PX002';
END
$$;

CREATE FUNCTION public.engine_runs_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
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

CREATE FUNCTION public.engine_runs_rewaiting() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF ingestion_is_ready(NEW.as_of_date, NEW.region) THEN
        PERFORM ingestion_set_ready(NEW.as_of_date, NEW.region, false);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.ingestion_batches_changed() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    pair record;
BEGIN
    FOR pair IN
        SELECT as_of_date, region,
               min(dataset) AS first_dataset,
               count(DISTINCT dataset) AS dataset_count,
               bool_or(status = 'COMPLETE') AS any_complete
        FROM new_rows
        GROUP BY as_of_date, region
        ORDER BY as_of_date, region
    LOOP
        -- A required batch that leaves COMPLETE after its run has started is not
        -- ignored: it goes to the run's audit trail, and `prometheus check` reports
        -- the run while the batch stays incomplete.
        IF TG_OP = 'UPDATE' THEN
            INSERT INTO engine_run_events (run_id, kind, from_phase, to_phase, actor, detail)
            SELECT r.run_id, 'batch_regressed', r.phase, r.phase, 'db',
                   jsonb_build_object('dataset', n.dataset, 'status', n.status)
            FROM new_rows n
            JOIN old_rows o USING (dataset, as_of_date, region)
            JOIN region_datasets rd ON rd.region = n.region AND rd.dataset = n.dataset
            JOIN engine_runs r ON r.as_of_date = n.as_of_date AND r.region = n.region
            WHERE n.as_of_date = pair.as_of_date AND n.region = pair.region
              AND o.status = 'COMPLETE' AND n.status <> 'COMPLETE'
              AND r.phase <> 'WAITING_FOR_DATA';
        END IF;

        CONTINUE WHEN NOT pair.any_complete;

        PERFORM prometheus_notify('prometheus_ingestion', json_build_object(
            'as_of_date', pair.as_of_date,
            'region', left(pair.region, 64),
            'dataset', left(pair.first_dataset, 64),
            'dataset_count', pair.dataset_count
        )::text);

        PERFORM ingestion_mark_ready(pair.as_of_date, pair.region, true);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.ingestion_batches_touched() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    NEW.change_id := nextval('ingestion_batch_changes');
    RETURN NEW;
END
$$;

CREATE FUNCTION public.ingestion_is_ready(day date, reg text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT EXISTS (SELECT 1 FROM region_datasets WHERE region = reg)
       AND NOT EXISTS (
            SELECT 1
            FROM region_datasets rd
            LEFT JOIN ingestion_batches b
              ON b.dataset = rd.dataset AND b.as_of_date = day AND b.region = reg
            WHERE rd.region = reg AND b.status IS DISTINCT FROM 'COMPLETE')
$$;

CREATE FUNCTION public.ingestion_mark_ready(day date, reg text, ensure_run boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
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

CREATE FUNCTION public.ingestion_set_ready(day date, reg text, ensure_run boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    saved_actor  text := current_setting('prometheus.actor', true);
    saved_detail text := current_setting('prometheus.detail', true);
    saved_notify text := current_setting('prometheus.notify', true);
BEGIN
    PERFORM set_config('prometheus.actor', 'db', true),
            set_config('prometheus.detail', '{"reason": "required datasets complete"}', true),
            set_config('prometheus.notify', 'on', true);
    IF ensure_run THEN
        INSERT INTO engine_runs (as_of_date, region)
        VALUES (day, reg)
        ON CONFLICT (as_of_date, region) DO NOTHING;
    END IF;
    -- A run past WAITING_FOR_DATA (or FAILED) is left alone: re-marking is a no-op.
    UPDATE engine_runs SET phase = 'DATA_READY'
    WHERE as_of_date = day AND region = reg AND phase = 'WAITING_FOR_DATA';
    PERFORM set_config('prometheus.actor', coalesce(saved_actor, ''), true),
            set_config('prometheus.detail', coalesce(saved_detail, ''), true),
            set_config('prometheus.notify', coalesce(saved_notify, ''), true);
END
$$;

CREATE FUNCTION public.prometheus_ensure_runs(p_dates date[], p_regions text[], p_actor text) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
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

CREATE TABLE public.engine_runs (
    run_id bigint NOT NULL,
    as_of_date date NOT NULL,
    region text NOT NULL,
    phase text DEFAULT 'WAITING_FOR_DATA'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    next_attempt_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    phase_changed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT engine_runs_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT engine_runs_phase_check CHECK ((phase = ANY (ARRAY['WAITING_FOR_DATA'::text, 'DATA_READY'::text, 'SIGNALS_DONE'::text, 'UNIVERSES_DONE'::text, 'COMPLETED'::text, 'FAILED'::text]))),
    CONSTRAINT engine_runs_region_check CHECK ((region <> ''::text))
);

CREATE FUNCTION public.prometheus_force_phase(p_run_id bigint, p_to_phase text, p_actor text, p_reason text, p_override text) RETURNS SETOF public.engine_runs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
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

CREATE FUNCTION public.prometheus_granted(p_kind text, p_run_id bigint, p_to_phase text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT EXISTS (
        SELECT 1 FROM engine_run_grants g
        WHERE g.txid = pg_current_xact_id_if_assigned()
          AND g.kind = p_kind
          AND g.run_id = p_run_id
          AND g.to_phase IS NOT DISTINCT FROM p_to_phase)
$$;

CREATE FUNCTION public.prometheus_is_legal_transition(from_phase text, to_phase text) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
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

CREATE FUNCTION public.prometheus_is_purgeable(p_phase text, p_as_of_date date, p_cutoff date) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT p_phase IN ('COMPLETED', 'FAILED') AND p_as_of_date < p_cutoff
$$;

CREATE FUNCTION public.prometheus_notify(p_channel text, p_payload text) RETURNS boolean
    LANGUAGE sql
    AS $_$
    SELECT CASE
        WHEN pg_notification_queue_usage() > CASE
            WHEN current_setting('prometheus.notify_queue_limit', true) ~ '^ *[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)? *$'
            THEN current_setting('prometheus.notify_queue_limit', true)::float8
            ELSE 0.5
        END THEN false
        ELSE pg_notify(p_channel, p_payload) IS NOT NULL
    END
$_$;

CREATE TABLE public.engine_run_purges (
    purge_id bigint NOT NULL,
    at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    actor text NOT NULL,
    reason text NOT NULL,
    cutoff date NOT NULL,
    runs_purged bigint NOT NULL,
    events_purged bigint NOT NULL,
    CONSTRAINT engine_run_purges_actor_check CHECK ((btrim(actor) <> ''::text)),
    CONSTRAINT engine_run_purges_events_purged_check CHECK ((events_purged >= 0)),
    CONSTRAINT engine_run_purges_reason_check CHECK ((btrim(reason) <> ''::text)),
    CONSTRAINT engine_run_purges_runs_purged_check CHECK ((runs_purged >= 0))
);

CREATE FUNCTION public.prometheus_purge_runs(p_cutoff date, p_actor text, p_reason text) RETURNS public.engine_run_purges
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
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

CREATE FUNCTION public.prometheus_refuse_truncate() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RAISE EXCEPTION '% holds the audit history: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'PX002';
END
$$;

CREATE FUNCTION public.prometheus_restore_context(saved text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    PERFORM set_config('prometheus.actor', coalesce(saved[1], ''), true),
            set_config('prometheus.detail', coalesce(saved[2], ''), true),
            set_config('prometheus.notify', coalesce(saved[3], ''), true);
END
$$;

CREATE FUNCTION public.prometheus_set_context(p_actor text, p_detail jsonb, p_notify boolean) RETURNS text[]
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
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

CREATE FUNCTION public.prometheus_setting(name text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT nullif(current_setting(name, true), '')
$$;

CREATE FUNCTION public.prometheus_update_phase(p_run_id bigint, p_from_phase text, p_to_phase text, p_actor text, p_detail jsonb, p_notify boolean) RETURNS SETOF public.engine_runs
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
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

CREATE FUNCTION public.region_datasets_changed() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    waiting record;
BEGIN
    FOR waiting IN
        SELECT r.as_of_date, r.region
        FROM engine_runs r
        WHERE r.phase = 'WAITING_FOR_DATA'
          AND r.region IN (SELECT region FROM changed_rows)
        ORDER BY r.as_of_date, r.region
    LOOP
        PERFORM ingestion_mark_ready(waiting.as_of_date, waiting.region, false);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TABLE public.book_weights (
    run_id bigint NOT NULL,
    instrument_id text NOT NULL,
    weight double precision NOT NULL,
    CONSTRAINT book_weights_weight_check CHECK (((weight > (0)::double precision) AND (weight <= (1)::double precision)))
);

CREATE TABLE public.engine_run_events (
    event_id bigint NOT NULL,
    run_id bigint NOT NULL,
    kind text NOT NULL,
    from_phase text,
    to_phase text NOT NULL,
    at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    actor text NOT NULL,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT engine_run_events_kind_check CHECK ((kind = ANY (ARRAY['transition'::text, 'attempt_failed'::text, 'batch_regressed'::text])))
);

ALTER TABLE public.engine_run_events ALTER COLUMN event_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.engine_run_events_event_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.engine_run_grants (
    txid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    kind text NOT NULL,
    run_id bigint NOT NULL,
    to_phase text
);

CREATE TABLE public.engine_run_holds (
    hold_id bigint NOT NULL,
    region text NOT NULL,
    phase text,
    from_date date,
    to_date date,
    reason text NOT NULL,
    held_by text NOT NULL,
    held_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    released_by text,
    released_at timestamp with time zone,
    release_reason text,
    CONSTRAINT engine_run_holds_check CHECK ((from_date <= to_date)),
    CONSTRAINT engine_run_holds_check1 CHECK ((((released_at IS NULL) = (released_by IS NULL)) AND ((released_at IS NULL) = (release_reason IS NULL)))),
    CONSTRAINT engine_run_holds_held_by_check CHECK ((btrim(held_by) <> ''::text)),
    CONSTRAINT engine_run_holds_phase_check CHECK ((phase = ANY (ARRAY['DATA_READY'::text, 'SIGNALS_DONE'::text, 'UNIVERSES_DONE'::text]))),
    CONSTRAINT engine_run_holds_reason_check CHECK ((btrim(reason) <> ''::text)),
    CONSTRAINT engine_run_holds_region_check CHECK ((region <> ''::text)),
    CONSTRAINT engine_run_holds_release_reason_check CHECK ((btrim(release_reason) <> ''::text)),
    CONSTRAINT engine_run_holds_released_by_check CHECK ((btrim(released_by) <> ''::text))
);

CREATE VIEW public.engine_run_hold_coverage AS
 SELECT h.hold_id,
    r.run_id
   FROM (public.engine_run_holds h
     JOIN public.engine_runs r ON (((r.region = h.region) AND ((h.phase IS NULL) OR (r.phase = h.phase)) AND ((h.from_date IS NULL) OR (r.as_of_date >= h.from_date)) AND ((h.to_date IS NULL) OR (r.as_of_date <= h.to_date)))))
  WHERE ((h.released_at IS NULL) AND (r.phase <> ALL (ARRAY['COMPLETED'::text, 'FAILED'::text])));

ALTER TABLE public.engine_run_holds ALTER COLUMN hold_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.engine_run_holds_hold_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE public.engine_run_purges ALTER COLUMN purge_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.engine_run_purges_purge_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE public.engine_runs ALTER COLUMN run_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.engine_runs_run_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE VIEW public.engine_runs_with_holds AS
 SELECT r.run_id,
    r.as_of_date,
    r.region,
    r.phase,
    r.attempts,
    r.last_error,
    r.next_attempt_at,
    r.created_at,
    r.updated_at,
    r.phase_changed_at,
    ( SELECT min(c.hold_id) AS min
           FROM public.engine_run_hold_coverage c
          WHERE (c.run_id = r.run_id)) AS hold_id
   FROM public.engine_runs r;

CREATE TABLE public.ingestion_batches (
    dataset text NOT NULL,
    as_of_date date NOT NULL,
    region text NOT NULL,
    status text NOT NULL,
    row_count bigint DEFAULT 0 NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    completed_at timestamp with time zone,
    change_id bigint NOT NULL,
    CONSTRAINT ingestion_batches_row_count_check CHECK ((row_count >= 0)),
    CONSTRAINT ingestion_batches_status_check CHECK ((status = ANY (ARRAY['RUNNING'::text, 'COMPLETE'::text, 'FAILED'::text])))
);

CREATE SEQUENCE public.ingestion_batch_changes
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.ingestion_batch_changes OWNED BY public.ingestion_batches.change_id;

CREATE TABLE public.instruments (
    instrument_id text NOT NULL,
    region text NOT NULL,
    symbol text NOT NULL
);

CREATE TABLE public.prices_daily (
    instrument_id text NOT NULL,
    as_of_date date NOT NULL,
    open double precision NOT NULL,
    high double precision NOT NULL,
    low double precision NOT NULL,
    close double precision NOT NULL,
    volume bigint NOT NULL,
    CONSTRAINT prices_daily_close_check CHECK ((close > (0)::double precision)),
    CONSTRAINT prices_daily_high_check CHECK ((high > (0)::double precision)),
    CONSTRAINT prices_daily_low_check CHECK ((low > (0)::double precision)),
    CONSTRAINT prices_daily_open_check CHECK ((open > (0)::double precision)),
    CONSTRAINT prices_daily_volume_check CHECK ((volume >= 0))
);

CREATE TABLE public.reactor_heartbeats (
    reactor_id text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    stopped_at timestamp with time zone,
    listener_hears boolean,
    listener_problem text
);

CREATE TABLE public.region_datasets (
    region text NOT NULL,
    dataset text NOT NULL
);

CREATE TABLE public.signal_scores (
    run_id bigint NOT NULL,
    instrument_id text NOT NULL,
    trailing_return double precision NOT NULL,
    volatility double precision NOT NULL,
    liquidity double precision NOT NULL,
    stability double precision NOT NULL,
    assessment double precision NOT NULL
);

CREATE TABLE public.universe_members (
    run_id bigint NOT NULL,
    instrument_id text NOT NULL,
    rank integer NOT NULL,
    score double precision NOT NULL
);

ALTER TABLE ONLY public.ingestion_batches ALTER COLUMN change_id SET DEFAULT nextval('public.ingestion_batch_changes'::regclass);

ALTER TABLE ONLY public.book_weights
    ADD CONSTRAINT book_weights_pkey PRIMARY KEY (run_id, instrument_id);

ALTER TABLE ONLY public.engine_run_events
    ADD CONSTRAINT engine_run_events_pkey PRIMARY KEY (event_id);

ALTER TABLE ONLY public.engine_run_grants
    ADD CONSTRAINT engine_run_grants_pkey PRIMARY KEY (txid, kind, run_id);

ALTER TABLE ONLY public.engine_run_holds
    ADD CONSTRAINT engine_run_holds_pkey PRIMARY KEY (hold_id);

ALTER TABLE ONLY public.engine_run_purges
    ADD CONSTRAINT engine_run_purges_pkey PRIMARY KEY (purge_id);

ALTER TABLE ONLY public.engine_runs
    ADD CONSTRAINT engine_runs_as_of_date_region_key UNIQUE (as_of_date, region);

ALTER TABLE ONLY public.engine_runs
    ADD CONSTRAINT engine_runs_pkey PRIMARY KEY (run_id);

ALTER TABLE ONLY public.ingestion_batches
    ADD CONSTRAINT ingestion_batches_pkey PRIMARY KEY (dataset, as_of_date, region);

ALTER TABLE ONLY public.instruments
    ADD CONSTRAINT instruments_pkey PRIMARY KEY (instrument_id);

ALTER TABLE ONLY public.prices_daily
    ADD CONSTRAINT prices_daily_pkey PRIMARY KEY (instrument_id, as_of_date);

ALTER TABLE ONLY public.reactor_heartbeats
    ADD CONSTRAINT reactor_heartbeats_pkey PRIMARY KEY (reactor_id);

ALTER TABLE ONLY public.region_datasets
    ADD CONSTRAINT region_datasets_pkey PRIMARY KEY (region, dataset);

ALTER TABLE ONLY public.signal_scores
    ADD CONSTRAINT signal_scores_pkey PRIMARY KEY (run_id, instrument_id);

ALTER TABLE ONLY public.universe_members
    ADD CONSTRAINT universe_members_pkey PRIMARY KEY (run_id, instrument_id);

CREATE INDEX engine_run_events_failed_idx ON public.engine_run_events USING btree (at) WHERE (to_phase = 'FAILED'::text);

CREATE INDEX engine_run_events_run_idx ON public.engine_run_events USING btree (run_id, event_id);

CREATE UNIQUE INDEX engine_run_holds_active_idx ON public.engine_run_holds USING btree (region, COALESCE(phase, ''::text), COALESCE(from_date, '-infinity'::date), COALESCE(to_date, 'infinity'::date)) WHERE (released_at IS NULL);

CREATE INDEX engine_runs_active_idx ON public.engine_runs USING btree (phase, phase_changed_at) WHERE (phase <> ALL (ARRAY['COMPLETED'::text, 'FAILED'::text]));

CREATE INDEX engine_runs_due_idx ON public.engine_runs USING btree (COALESCE(next_attempt_at, phase_changed_at), run_id) WHERE (phase = ANY (ARRAY['DATA_READY'::text, 'SIGNALS_DONE'::text, 'UNIVERSES_DONE'::text]));

CREATE INDEX ingestion_batches_change_idx ON public.ingestion_batches USING btree (change_id);

CREATE INDEX ingestion_batches_run_idx ON public.ingestion_batches USING btree (as_of_date, region);

CREATE INDEX instruments_region_idx ON public.instruments USING btree (region, instrument_id);

CREATE TRIGGER engine_run_events_append_only BEFORE DELETE OR UPDATE ON public.engine_run_events FOR EACH ROW EXECUTE FUNCTION public.engine_run_events_append_only();

CREATE TRIGGER engine_run_events_no_truncate BEFORE TRUNCATE ON public.engine_run_events FOR EACH STATEMENT EXECUTE FUNCTION public.prometheus_refuse_truncate();

CREATE TRIGGER engine_run_holds_guard BEFORE DELETE OR UPDATE ON public.engine_run_holds FOR EACH ROW EXECUTE FUNCTION public.engine_run_holds_guard();

CREATE TRIGGER engine_run_holds_no_truncate BEFORE TRUNCATE ON public.engine_run_holds FOR EACH STATEMENT EXECUTE FUNCTION public.prometheus_refuse_truncate();

CREATE TRIGGER engine_run_holds_released AFTER UPDATE ON public.engine_run_holds REFERENCING NEW TABLE AS released_rows FOR EACH STATEMENT EXECUTE FUNCTION public.engine_run_holds_released();

CREATE TRIGGER engine_run_purges_append_only BEFORE DELETE OR UPDATE ON public.engine_run_purges FOR EACH ROW EXECUTE FUNCTION public.engine_run_purges_append_only();

CREATE TRIGGER engine_run_purges_no_truncate BEFORE TRUNCATE ON public.engine_run_purges FOR EACH STATEMENT EXECUTE FUNCTION public.prometheus_refuse_truncate();

CREATE TRIGGER engine_runs_audit_and_notify AFTER INSERT OR UPDATE OF phase ON public.engine_runs FOR EACH ROW EXECUTE FUNCTION public.engine_runs_audit_and_notify();

CREATE TRIGGER engine_runs_created AFTER INSERT ON public.engine_runs REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION public.engine_runs_created();

CREATE TRIGGER engine_runs_deleted BEFORE DELETE ON public.engine_runs FOR EACH ROW EXECUTE FUNCTION public.engine_runs_deleted();

CREATE TRIGGER engine_runs_guard BEFORE INSERT OR UPDATE ON public.engine_runs FOR EACH ROW EXECUTE FUNCTION public.engine_runs_guard();

CREATE TRIGGER engine_runs_no_truncate BEFORE TRUNCATE ON public.engine_runs FOR EACH STATEMENT EXECUTE FUNCTION public.prometheus_refuse_truncate();

CREATE TRIGGER engine_runs_rewaiting AFTER UPDATE OF phase ON public.engine_runs FOR EACH ROW WHEN (((new.phase = 'WAITING_FOR_DATA'::text) AND (old.phase IS DISTINCT FROM new.phase))) EXECUTE FUNCTION public.engine_runs_rewaiting();

CREATE TRIGGER ingestion_batches_inserted AFTER INSERT ON public.ingestion_batches REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.ingestion_batches_changed();

CREATE TRIGGER ingestion_batches_touched BEFORE UPDATE ON public.ingestion_batches FOR EACH ROW EXECUTE FUNCTION public.ingestion_batches_touched();

CREATE TRIGGER ingestion_batches_updated AFTER UPDATE ON public.ingestion_batches REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.ingestion_batches_changed();

CREATE TRIGGER region_datasets_deleted AFTER DELETE ON public.region_datasets REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION public.region_datasets_changed();

CREATE TRIGGER region_datasets_inserted AFTER INSERT ON public.region_datasets REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION public.region_datasets_changed();

ALTER TABLE ONLY public.book_weights
    ADD CONSTRAINT book_weights_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.engine_runs(run_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.engine_run_events
    ADD CONSTRAINT engine_run_events_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.engine_runs(run_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.prices_daily
    ADD CONSTRAINT prices_daily_instrument_id_fkey FOREIGN KEY (instrument_id) REFERENCES public.instruments(instrument_id);

ALTER TABLE ONLY public.signal_scores
    ADD CONSTRAINT signal_scores_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.engine_runs(run_id) ON DELETE CASCADE;

ALTER TABLE ONLY public.universe_members
    ADD CONSTRAINT universe_members_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.engine_runs(run_id) ON DELETE CASCADE;

REVOKE ALL ON FUNCTION public.prometheus_force_phase(p_run_id bigint, p_to_phase text, p_actor text, p_reason text, p_override text) FROM PUBLIC;

REVOKE ALL ON FUNCTION public.prometheus_purge_runs(p_cutoff date, p_actor text, p_reason text) FROM PUBLIC;
