-- Every write of a batch row moves a number that only grows, read from an index: the web
-- console's poll (web_version) sees a dataset arrive, or fail, for a run that still waits,
-- also while the console's LISTEN is down (no audit event is written for it: the run's
-- phase does not change). A sequence rather than a timestamp: two writes in one
-- microsecond, or a clock stepping back, still differ. The trigger sets it, so every
-- writer moves it (an ingestion job writing its own batch rows with plain SQL too), and
-- MVCC shows a new value only once its write commits.

SELECT set_config('search_path', format('%I, pg_temp', current_schema()), true);

CREATE SEQUENCE ingestion_batch_changes;

ALTER TABLE ingestion_batches
    ADD COLUMN change_id bigint NOT NULL DEFAULT nextval('ingestion_batch_changes');

ALTER SEQUENCE ingestion_batch_changes OWNED BY ingestion_batches.change_id;

CREATE INDEX ingestion_batches_change_idx ON ingestion_batches (change_id);

CREATE FUNCTION ingestion_batches_touched() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    NEW.change_id := nextval('ingestion_batch_changes');
    RETURN NEW;
END
$$;

CREATE TRIGGER ingestion_batches_touched
    BEFORE UPDATE ON ingestion_batches
    FOR EACH ROW EXECUTE FUNCTION ingestion_batches_touched();
