-- name: delete_signal_scores
DELETE FROM signal_scores WHERE run_id = :run_id;

-- name: compute_signal_scores
-- Profiles (trailing return, volatility, liquidity), STAB (stability) and the Assessment,
-- for the region's instruments priced on the run's date, over the last :lookback returns.
-- Aggregates take ORDER BY so floating-point sums, and so reruns, are bit-identical.
INSERT INTO signal_scores
    (run_id, instrument_id, trailing_return, volatility, liquidity, stability, assessment)
WITH recent AS (
    SELECT p.instrument_id, p.as_of_date, p.close, p.volume,
           row_number() OVER (PARTITION BY p.instrument_id ORDER BY p.as_of_date DESC) AS age
    FROM prices_daily p
    JOIN instruments i USING (instrument_id)
    WHERE i.region = :region
      AND p.as_of_date <= :as_of_date
      AND p.as_of_date > CAST(:as_of_date AS date) - :calendar_days
), returns AS (
    SELECT instrument_id, age, as_of_date, close, volume,
           ln(close / lead(close) OVER (PARTITION BY instrument_id ORDER BY age)) AS log_return
    FROM recent
    WHERE age <= :lookback + 1
), profiles AS (
    SELECT instrument_id,
           exp(coalesce(sum(log_return ORDER BY age), 0)) - 1 AS trailing_return,
           coalesce(stddev_samp(log_return ORDER BY age), 0) AS volatility,
           avg(close * volume ORDER BY age) AS liquidity
    FROM returns
    GROUP BY instrument_id
    HAVING bool_or(age = 1 AND as_of_date = :as_of_date)
), stab AS (
    SELECT *, 1.0 / (1.0 + volatility * sqrt(252.0)) AS stability FROM profiles
)
SELECT :run_id, instrument_id, trailing_return, volatility, liquidity, stability,
       0.5 * percent_rank() OVER (ORDER BY trailing_return, instrument_id)
     + 0.3 * percent_rank() OVER (ORDER BY stability, instrument_id)
     + 0.2 * percent_rank() OVER (ORDER BY liquidity, instrument_id) AS assessment
FROM stab;

-- name: delete_universe
DELETE FROM universe_members WHERE run_id = :run_id;

-- name: build_universe
-- The top :size instruments by assessment among the liquid ones; ties by instrument id.
INSERT INTO universe_members (run_id, instrument_id, rank, score)
SELECT :run_id, instrument_id, rank, assessment
FROM (
    SELECT instrument_id, assessment,
           row_number() OVER (ORDER BY assessment DESC, instrument_id) AS rank
    FROM signal_scores
    WHERE run_id = :run_id AND liquidity >= :min_liquidity
) ranked
WHERE rank <= :size;

-- name: universe_scores
SELECT instrument_id, score FROM universe_members WHERE run_id = :run_id ORDER BY rank;

-- name: delete_book
DELETE FROM book_weights WHERE run_id = :run_id;

-- name: insert_book_weight
INSERT INTO book_weights (run_id, instrument_id, weight) VALUES (:run_id, :instrument_id, :weight);
