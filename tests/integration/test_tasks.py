"""The reference phase tasks on deterministic prices: what they compute, and that a rerun
gives the same rows, never duplicates."""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from prometheus.config import Settings
from prometheus.pipeline.overrides import set_phase
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import Outcome, Run, advance_run, ensure_run
from prometheus.pipeline.tasks.books import MAX_WEIGHT
from prometheus.pipeline.tasks.signals import LOOKBACK_RETURNS
from tests.support.market_data import instrument_ids, seed_instruments

DAY = date(2026, 11, 24)
LIQUID = instrument_ids("US", 12)
ILLIQUID = "USILLQ"
STALE = "USSTALE"  # no price on the run's date
RESULT_QUERIES = {
    "signal_scores": "SELECT instrument_id, trailing_return, volatility, liquidity, stability,"
    " assessment FROM signal_scores WHERE run_id = :r ORDER BY instrument_id",
    "universe_members": "SELECT instrument_id, rank, score FROM universe_members"
    " WHERE run_id = :r ORDER BY instrument_id",
    "book_weights": "SELECT instrument_id, weight FROM book_weights"
    " WHERE run_id = :r ORDER BY instrument_id",
}
Rows = dict[str, list[tuple[Any, ...]]]


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    with engine.begin() as conn:
        seed_instruments(conn, "US", LIQUID, DAY)
        seed_instruments(conn, "US", [ILLIQUID], DAY, volume=100)
        seed_instruments(conn, "US", [STALE], DAY - timedelta(days=1))
        seed_instruments(conn, "EU", instrument_ids("EU", 3), DAY)
        # A price after the run's date must not leak into the run.
        conn.execute(
            text("INSERT INTO prices_daily VALUES (:id, :day, 1e6, 1e6, 1e6, 1e6, 1000000000)"),
            {"id": LIQUID[0], "day": DAY + timedelta(days=1)},
        )
    return engine


def complete(engine: Engine, settings: Settings, run: Run) -> None:
    for expected in (Phase.SIGNALS_DONE, Phase.UNIVERSES_DONE, Phase.COMPLETED):
        step = advance_run(engine, run, settings=settings, actor="t")
        assert step.outcome is Outcome.ADVANCED, step
        assert step.run is not None and step.run.phase is expected


def results(engine: Engine, run_id: int) -> Rows:
    with engine.connect() as conn:
        return {
            table: [tuple(r) for r in conn.execute(text(sql), {"r": run_id})]
            for table, sql in RESULT_QUERIES.items()
        }


def expected_profile(conn: Connection, instrument: str) -> tuple[float, float, float]:
    """Trailing return, volatility and liquidity, recomputed here from the raw prices."""
    rows = conn.execute(
        text(
            "SELECT close, volume FROM prices_daily WHERE instrument_id = :i AND as_of_date <= :d"
            " ORDER BY as_of_date DESC LIMIT :n"
        ),
        {"i": instrument, "d": DAY, "n": LOOKBACK_RETURNS + 1},
    ).all()
    closes = [r.close for r in reversed(rows)]
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    liquidity = statistics.fmean(r.close * r.volume for r in rows)
    return closes[-1] / closes[0] - 1, statistics.stdev(returns), liquidity


def test_reference_tasks_compute_signals_universe_and_book(
    seeded: Engine, settings: Settings
) -> None:
    run = ensure_run(seeded, DAY, "US", data_ready=True, actor="t")
    complete(seeded, settings, run)
    rows = results(seeded, run.run_id)

    scores = {r[0]: r[1:] for r in rows["signal_scores"]}
    assert sorted(scores) == sorted([*LIQUID, ILLIQUID])  # not stale, not another region
    with seeded.connect() as conn:
        for instrument in (LIQUID[0], LIQUID[7], ILLIQUID):
            trailing, vol, liquidity, stability, assessment = scores[instrument]
            want = expected_profile(conn, instrument)
            assert (trailing, vol, liquidity) == pytest.approx(want, rel=1e-9)
            assert stability == pytest.approx(1 / (1 + vol * math.sqrt(252)), rel=1e-12)
            assert 0 <= assessment <= 1

    universe = rows["universe_members"]
    assert sorted(r[0] for r in universe) == sorted(LIQUID)  # the illiquid one is left out
    by_rank = sorted(universe, key=lambda r: r[1])
    assert [r[1] for r in by_rank] == list(range(1, len(LIQUID) + 1))
    assert [r[2] for r in by_rank] == sorted((scores[i][4] for i in LIQUID), reverse=True)
    assert all(r[2] == scores[r[0]][4] for r in universe)

    weights: dict[str, float] = dict(rows["book_weights"])
    assert set(weights) <= set(LIQUID)
    assert len(weights) >= len(LIQUID) - 1  # only a zero score may be left out
    assert math.isclose(sum(weights.values()), 1.0, abs_tol=1e-9)
    assert max(weights.values()) <= MAX_WEIGHT + 1e-12
    assert min(weights.values()) > 0


def test_rerunning_every_phase_gives_identical_rows(seeded: Engine, settings: Settings) -> None:
    run = ensure_run(seeded, DAY, "US", data_ready=True, actor="t")
    complete(seeded, settings, run)
    first = results(seeded, run.run_id)
    assert all(first.values())

    again = set_phase(seeded, DAY, "US", Phase.DATA_READY, actor="op", reason="rerun", force=True)
    complete(seeded, settings, again)
    assert results(seeded, run.run_id) == first


def test_rerunning_the_last_phase_alone_gives_identical_rows(
    seeded: Engine, settings: Settings
) -> None:
    run = ensure_run(seeded, DAY, "US", data_ready=True, actor="t")
    complete(seeded, settings, run)
    first = results(seeded, run.run_id)
    again = set_phase(
        seeded, DAY, "US", Phase.UNIVERSES_DONE, actor="op", reason="rebook", force=True
    )
    step = advance_run(seeded, again, settings=settings, actor="t")
    assert step.outcome is Outcome.ADVANCED
    assert results(seeded, run.run_id) == first


def test_runs_of_other_dates_keep_their_own_rows(seeded: Engine, settings: Settings) -> None:
    today = ensure_run(seeded, DAY, "US", data_ready=True, actor="t")
    yesterday = ensure_run(seeded, DAY - timedelta(days=1), "US", data_ready=True, actor="t")
    complete(seeded, settings, today)
    complete(seeded, settings, yesterday)
    mine, theirs = results(seeded, today.run_id), results(seeded, yesterday.run_id)
    assert STALE in {r[0] for r in theirs["signal_scores"]}  # priced on the day before
    assert STALE not in {r[0] for r in mine["signal_scores"]}
    assert mine["signal_scores"] != theirs["signal_scores"]
    assert results(seeded, today.run_id) == mine  # the second run did not touch the first's


def test_signals_with_no_prices_for_the_date_fail_the_attempt_and_write_nothing(
    engine: Engine, settings: Settings
) -> None:
    """An empty book would be a silent failure: the attempt fails, visibly, and retries."""
    run = ensure_run(engine, date(2026, 11, 24), "NOPRICES", data_ready=True, actor="test")
    step = advance_run(engine, run, settings=settings, actor="test")
    assert step.outcome is Outcome.RETRY_SCHEDULED
    assert step.error is not None and "no NOPRICES instrument has a price" in step.error
    assert step.run is not None and step.run.phase is Phase.DATA_READY
