-- Readiness in the database: when the last dataset a region requires for a date turns
-- COMPLETE, the run exists and is DATA_READY in the ingestion job's own transaction.
--
-- Statement-level with transition tables: a bulk statement costs one pass per distinct
-- (as_of_date, region), never one per row. An advisory lock per (as_of_date, region)
-- closes the write skew of two jobs finishing the last two datasets at once: under
-- READ COMMITTED the second to take the lock sees the first's committed batch, because
-- every statement after the lock takes a new snapshot.

CREATE FUNCTION ingestion_batches_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    pair record;
BEGIN
    FOR pair IN
        SELECT as_of_date, region,
               array_agg(DISTINCT dataset ORDER BY dataset) AS datasets,
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
            'region', pair.region,
            'dataset', pair.datasets[1],
            'datasets', pair.datasets
        )::text);

        PERFORM pg_advisory_xact_lock(
            hashtextextended('prometheus.readiness:' || pair.region || ':' || pair.as_of_date, 0));

        IF ingestion_is_ready(pair.as_of_date, pair.region) THEN
            INSERT INTO engine_runs (as_of_date, region)
            VALUES (pair.as_of_date, pair.region)
            ON CONFLICT (as_of_date, region) DO NOTHING;

            UPDATE engine_runs SET phase = 'DATA_READY'
            WHERE as_of_date = pair.as_of_date AND region = pair.region
              AND phase = 'WAITING_FOR_DATA';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- Ready means: the region requires at least one dataset, and every one is COMPLETE.
CREATE FUNCTION ingestion_is_ready(day date, reg text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM region_datasets WHERE region = reg)
       AND NOT EXISTS (
            SELECT 1
            FROM region_datasets rd
            LEFT JOIN ingestion_batches b
              ON b.dataset = rd.dataset AND b.as_of_date = day AND b.region = reg
            WHERE rd.region = reg AND b.status IS DISTINCT FROM 'COMPLETE')
$$;

CREATE TRIGGER ingestion_batches_inserted
    AFTER INSERT ON ingestion_batches
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingestion_batches_changed();

CREATE TRIGGER ingestion_batches_updated
    AFTER UPDATE ON ingestion_batches
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingestion_batches_changed();
