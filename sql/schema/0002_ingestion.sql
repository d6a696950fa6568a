-- Ingested data and the batches that say a dataset is complete for a date and region.

CREATE TABLE instruments (
    instrument_id text PRIMARY KEY,
    region        text NOT NULL,
    symbol        text NOT NULL
);

CREATE INDEX instruments_region_idx ON instruments (region, instrument_id);

CREATE TABLE prices_daily (
    instrument_id text             NOT NULL REFERENCES instruments (instrument_id),
    as_of_date    date             NOT NULL,
    open          double precision NOT NULL CHECK (open > 0),
    high          double precision NOT NULL CHECK (high > 0),
    low           double precision NOT NULL CHECK (low > 0),
    close         double precision NOT NULL CHECK (close > 0),
    volume        bigint           NOT NULL CHECK (volume >= 0),
    PRIMARY KEY (instrument_id, as_of_date)
);

CREATE TABLE region_datasets (
    region  text NOT NULL,
    dataset text NOT NULL,
    PRIMARY KEY (region, dataset)
);

CREATE TABLE ingestion_batches (
    dataset      text        NOT NULL,
    as_of_date   date        NOT NULL,
    region       text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('RUNNING', 'COMPLETE', 'FAILED')),
    row_count    bigint      NOT NULL DEFAULT 0 CHECK (row_count >= 0),
    started_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (dataset, as_of_date, region)
);

CREATE INDEX ingestion_batches_run_idx ON ingestion_batches (as_of_date, region);
