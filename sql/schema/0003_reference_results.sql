-- What the reference phase tasks write, keyed by run so a rerun replaces, never duplicates.

CREATE TABLE signal_scores (
    run_id          bigint           NOT NULL REFERENCES engine_runs (run_id) ON DELETE CASCADE,
    instrument_id   text             NOT NULL,
    trailing_return double precision NOT NULL,
    volatility      double precision NOT NULL,
    liquidity       double precision NOT NULL,
    stability       double precision NOT NULL,
    assessment      double precision NOT NULL,
    PRIMARY KEY (run_id, instrument_id)
);

CREATE TABLE universe_members (
    run_id        bigint           NOT NULL REFERENCES engine_runs (run_id) ON DELETE CASCADE,
    instrument_id text             NOT NULL,
    rank          integer          NOT NULL,
    score         double precision NOT NULL,
    PRIMARY KEY (run_id, instrument_id)
);

CREATE TABLE book_weights (
    run_id        bigint           NOT NULL REFERENCES engine_runs (run_id) ON DELETE CASCADE,
    instrument_id text             NOT NULL,
    weight        double precision NOT NULL CHECK (weight > 0 AND weight <= 1),
    PRIMARY KEY (run_id, instrument_id)
);
