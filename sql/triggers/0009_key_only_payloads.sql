-- Notification payloads carry keys only, and stay far under NOTIFY's 8,000 bytes whatever
-- the statement touched: a payload that is too long fails the writer's statement, so a
-- notification could fail an ingestion job (one completing 130 long dataset names did).
--
-- prometheus_ingestion: {as_of_date, region, dataset (the first, by name), dataset_count}
-- prometheus_engine_runs: {run_id, as_of_date, region, phase}
--
-- Text from the row is cut to PAYLOAD_TEXT_CHARS = 64 characters: at most 384 bytes once
-- JSON-escaped (6 bytes for a control character), so a payload stays under 1 KiB. A
-- listener only wakes on it and reads the row by its key (run_id, or date and region):
-- a region longer than that is still found by its run_id, or by the sweep.
-- The json of a date is ISO 8601 (YYYY-MM-DD) whatever the session's DateStyle.

SELECT set_config('search_path', format('%I, pg_temp', current_schema()), true);

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

        PERFORM pg_notify('prometheus_ingestion', json_build_object(
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
        PERFORM pg_notify('prometheus_engine_runs', json_build_object(
            'run_id', NEW.run_id,
            'as_of_date', NEW.as_of_date,
            'region', left(NEW.region, 64),
            'phase', NEW.phase
        )::text);
    END IF;
    RETURN NULL;
END
$$;
