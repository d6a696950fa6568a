-- Readiness in the database: when the last dataset a region requires for a date turns
-- COMPLETE, the run exists and is DATA_READY in the ingestion job's own transaction.
-- The rule holds whichever comes last: the data (ingestion_batches), the list of what
-- the region requires (region_datasets) or the run itself (engine_runs).
--
-- Statement-level with transition tables: a bulk statement costs one pass per distinct
-- (as_of_date, region), never one per row. An advisory lock per (as_of_date, region)
-- closes the write skew of two jobs finishing the last two datasets at once: under
-- READ COMMITTED the second to take the lock sees the first's committed batch, because
-- every statement after the lock takes a new snapshot. (Jobs must not run REPEATABLE
-- READ: one snapshot for the whole transaction would hide the other job's commit.)
--
-- prices_daily (and any other bulk table) carries no trigger of ours, on purpose: the
-- batch row is what says a dataset is done, so a trigger on the data would cost on
-- every COPY and tell nobody anything the batch row does not.

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

-- The one place that moves a run to DATA_READY because of its data (ensure_run: creating
-- it first if missing). Whoever's statement set it off (an ingestion job, `runs ensure`,
-- the reactor creating a run), the audit rows say the database did it, and why; the
-- caller's settings are put back after.
CREATE FUNCTION ingestion_set_ready(day date, reg text, ensure_run boolean) RETURNS void
LANGUAGE plpgsql AS $$
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

-- Take the pair's lock first, then look with a fresh snapshot. ensure_run: create a
-- missing run (a batch completing); otherwise only a run that already waits is moved
-- (a requirement change must not create runs for every date that has batches).
-- The locks are held to commit: a backfill completing N dates in one transaction holds
-- N of them, so keep such transactions to a few thousand dates.
CREATE FUNCTION ingestion_mark_ready(day date, reg text, ensure_run boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(
        hashtextextended('prometheus.readiness:' || reg || ':' || day, 0));

    IF ingestion_is_ready(day, reg) THEN
        PERFORM ingestion_set_ready(day, reg, ensure_run);
    END IF;
END
$$;

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

        PERFORM ingestion_mark_ready(pair.as_of_date, pair.region, true);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER ingestion_batches_inserted
    AFTER INSERT ON ingestion_batches
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingestion_batches_changed();

CREATE TRIGGER ingestion_batches_updated
    AFTER UPDATE ON ingestion_batches
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingestion_batches_changed();

-- The rule holds whichever changes last, the data or what a region requires: dropping
-- the requirement a waiting run was blocked on (or requiring datasets that are already
-- in) makes it ready. Only runs that exist and wait are looked at.
CREATE FUNCTION region_datasets_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER region_datasets_inserted
    AFTER INSERT ON region_datasets
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION region_datasets_changed();

CREATE TRIGGER region_datasets_deleted
    AFTER DELETE ON region_datasets
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION region_datasets_changed();

-- A run created after its data is all in (the calendar creating the day's runs late, an
-- operator's `runs ensure`) is ready at once, rather than waiting for a batch that
-- already came. It is created WAITING_FOR_DATA, as the guard requires, then moved.
--
-- No pair lock here, on purpose. A batch job that holds the lock and then inserts the
-- same run waits for this (uncommitted) insert: taking the lock here would deadlock.
-- None is needed either: if a concurrent batch is what completes the data, that job's
-- INSERT ... ON CONFLICT waits for this run to commit and then moves it itself. And a
-- bulk insert of thousands of runs must not take thousands of locks. The one race left
-- is a requirement dropped at the same instant (neither side sees the other): that run
-- waits for its next batch or `runs ensure --data-ready`, and `check` shows it waiting.
CREATE FUNCTION engine_runs_created() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER engine_runs_created
    AFTER INSERT ON engine_runs
    REFERENCING NEW TABLE AS new_runs
    FOR EACH STATEMENT EXECUTE FUNCTION engine_runs_created();
