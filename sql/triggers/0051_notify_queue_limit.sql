-- A notification can never fail the writer, not even when the server's NOTIFY queue is
-- full. A session that LISTENs and never reads (typically idle in a transaction, on any
-- database of the server) holds every notification queued since; at 100% every NOTIFY
-- fails at COMMIT, and with it the writer's transaction: an ingestion job, a phase that
-- COMPLETED, the FAILED of a run's last attempt. So every notification of ours goes
-- through prometheus_notify, which sends nothing while the queue is fuller than a limit
-- (pg_notification_queue_usage(), a fraction; `prometheus check` reports NOTIFY_QUEUE
-- above its own --max-notify-queue, 0.5 by default too). What a skipped notification
-- would have woken is found by the backstops: the reactor's own proof of its listener
-- goes through here as well, so while notifications are skipped its listener is deaf
-- and it polls every PROMETHEUS_POLL_INTERVAL; the sweep remains beneath that.
--
-- The limit is the setting prometheus.notify_queue_limit (default 0.5), so an operator
-- can move it, for a database or a role, without a migration:
--     ALTER DATABASE engine SET prometheus.notify_queue_limit = '0.8';
-- A value that is not a plain number counts as the default: a typo must not fail writers.
--
-- prometheus_notify is SQL that reads no table and calls only built-ins, so it is inlined
-- into its callers, whose search_path is pinned (as the helpers of 0014): it costs the
-- hot path a comparison, not a function call. It says whether it sent.

SELECT set_config('search_path', format('%I, pg_temp', current_schema()), true);

CREATE FUNCTION prometheus_notify(p_channel text, p_payload text) RETURNS boolean
LANGUAGE sql
AS $$
    SELECT CASE
        WHEN pg_notification_queue_usage() > CASE
            WHEN current_setting('prometheus.notify_queue_limit', true) ~ '^ *[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)? *$'
            THEN current_setting('prometheus.notify_queue_limit', true)::float8
            ELSE 0.5
        END THEN false
        ELSE pg_notify(p_channel, p_payload) IS NOT NULL
    END
$$;

CREATE OR REPLACE FUNCTION ingestion_batches_changed() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
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

CREATE OR REPLACE FUNCTION engine_runs_audit_and_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
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

CREATE OR REPLACE FUNCTION engine_run_holds_released() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
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
