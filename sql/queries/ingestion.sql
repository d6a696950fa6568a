-- name: mark_batches
-- Any number of batches in one statement, so the readiness trigger runs once for them
-- all (one NOTIFY per date/region, not per row). A batch that is RUNNING adds each job's
-- rows and keeps its start (partial loads add up); one that was COMPLETE or FAILED starts
-- over. The trigger on ingestion_batches does the rest.
INSERT INTO ingestion_batches AS b
    (dataset, as_of_date, region, status, row_count, started_at, completed_at)
SELECT t.dataset, t.as_of_date, t.region, CAST(:status AS text), t.row_count, now(),
       CASE WHEN CAST(:status AS text) = 'COMPLETE' THEN now() END
FROM unnest(CAST(:datasets AS text[]), CAST(:as_of_dates AS date[]),
            CAST(:regions AS text[]), CAST(:row_counts AS bigint[]))
     AS t(dataset, as_of_date, region, row_count)
ON CONFLICT (dataset, as_of_date, region) DO UPDATE
SET status = EXCLUDED.status,
    row_count = CASE WHEN b.status = 'RUNNING' THEN b.row_count + EXCLUDED.row_count
                     ELSE EXCLUDED.row_count END,
    started_at = CASE WHEN b.status = 'RUNNING' THEN b.started_at
                      ELSE EXCLUDED.started_at END,
    completed_at = EXCLUDED.completed_at
RETURNING b.*;

-- name: dataset_states
-- `ingest status`: the batches, plus the required datasets that have no batch yet
-- (MISSING) for every date and region that has a batch or a run: what a run waits for.
WITH batches AS (
    SELECT * FROM ingestion_batches
    WHERE (CAST(:as_of_date AS date) IS NULL OR as_of_date = :as_of_date)
      AND (CAST(:region AS text) IS NULL OR region = :region)
), pairs AS (
    SELECT as_of_date, region FROM batches
    UNION
    SELECT as_of_date, region FROM engine_runs
    WHERE (CAST(:as_of_date AS date) IS NULL OR as_of_date = :as_of_date)
      AND (CAST(:region AS text) IS NULL OR region = :region)
), expected AS (
    SELECT p.as_of_date, p.region, rd.dataset
    FROM pairs p
    JOIN region_datasets rd ON rd.region = p.region
)
SELECT as_of_date, region, dataset,
       e.dataset IS NOT NULL AS required,
       coalesce(b.status, 'MISSING') AS status,
       b.row_count, b.started_at, b.completed_at,
       r.phase AS run_phase
FROM batches b
FULL JOIN expected e USING (as_of_date, region, dataset)
LEFT JOIN engine_runs r USING (as_of_date, region)
ORDER BY as_of_date DESC, region, dataset
LIMIT :limit;

-- name: copy_prices
-- {table} is prices_daily, or the staging table when rows are replaced; it is filled in
-- with psycopg.sql.Identifier.
COPY {table} (instrument_id, as_of_date, open, high, low, close, volume) FROM STDIN;

-- name: create_staged_prices
CREATE TEMP TABLE staged_prices (LIKE prices_daily) ON COMMIT DROP;

-- name: upsert_staged_prices
-- A rerun replaces that date's rows for its instruments; other instruments' rows stay.
INSERT INTO prices_daily AS p (instrument_id, as_of_date, open, high, low, close, volume)
SELECT instrument_id, as_of_date, open, high, low, close, volume FROM staged_prices
ON CONFLICT (instrument_id, as_of_date) DO UPDATE
SET open = EXCLUDED.open,
    high = EXCLUDED.high,
    low = EXCLUDED.low,
    close = EXCLUDED.close,
    volume = EXCLUDED.volume;

-- name: drop_staged_prices
DROP TABLE staged_prices;

-- name: instrument_regions
SELECT instrument_id, region FROM instruments WHERE instrument_id = ANY(CAST(:ids AS text[]));

-- name: upsert_instruments
-- The instrument master for one region; a new symbol replaces the old one. The WHERE
-- never moves an instrument to another region (validation refuses that up front).
INSERT INTO instruments AS i (instrument_id, region, symbol)
SELECT t.instrument_id, CAST(:region AS text), t.symbol
FROM unnest(CAST(:ids AS text[]), CAST(:symbols AS text[])) AS t(instrument_id, symbol)
ON CONFLICT (instrument_id) DO UPDATE SET symbol = EXCLUDED.symbol
WHERE i.region = EXCLUDED.region;

-- name: require_datasets
-- One statement, so the requirement trigger looks at the region's waiting runs once,
-- with the whole new list in place.
INSERT INTO region_datasets (region, dataset)
SELECT CAST(:region AS text), d FROM unnest(CAST(:datasets AS text[])) AS d
ON CONFLICT (region, dataset) DO NOTHING
RETURNING dataset;

-- name: drop_datasets
DELETE FROM region_datasets
WHERE region = :region AND dataset = ANY(CAST(:datasets AS text[]))
RETURNING dataset;

-- name: region_datasets
SELECT region, dataset FROM region_datasets
WHERE CAST(:region AS text) IS NULL OR region = :region
ORDER BY region, dataset;
