"""The backfill's rule, with no database: which session gets a run created, which run is
redone, which is left, over a range with a holiday, a half day and runs in every phase."""

from __future__ import annotations

from datetime import date

import pytest

from prometheus.calendar import TradingCalendar
from prometheus.errors import InputError
from prometheus.pipeline.backfill import (
    Action,
    BackfillRequest,
    ExistingRun,
    Reprocess,
    plan_backfill,
)
from prometheus.pipeline.phases import Phase

# XNYS, Monday 24 November to Tuesday 2 December 2025: Thanksgiving (27th) is closed, the
# 28th a half day, the 29th and 30th a weekend.
START, END = date(2025, 11, 24), date(2025, 12, 2)
SESSIONS = [date(2025, 11, d) for d in (24, 25, 26, 28)] + [date(2025, 12, 1), date(2025, 12, 2)]


def us_sessions() -> dict[str, list[date]]:
    return {"US": [s.date for s in TradingCalendar().sessions("US", START, END)]}


def existing() -> list[ExistingRun]:
    """A run in every phase on the first six sessions but one, and one forced onto the
    holiday; the half day (28th) has none."""
    phases = [
        Phase.WAITING_FOR_DATA,
        Phase.DATA_READY,
        Phase.COMPLETED,
        Phase.FAILED,
        Phase.UNIVERSES_DONE,
    ]
    days = [d for d in SESSIONS if d != date(2025, 11, 28)]
    pairs = enumerate(zip(days, phases, strict=True))
    runs = [ExistingRun(i + 1, day, "US", phase) for i, (day, phase) in pairs]
    return [*runs, ExistingRun(99, date(2025, 11, 27), "US", Phase.FAILED)]


def actions(mode: Reprocess, runs: list[ExistingRun] | None = None) -> list[tuple[date, Action]]:
    plan = plan_backfill(us_sessions(), existing() if runs is None else runs, mode)
    return [(p.as_of_date, p.action) for p in plan]


def test_the_calendar_gives_sessions_without_the_holiday_and_with_the_half_day() -> None:
    assert us_sessions() == {"US": SESSIONS}
    half = TradingCalendar().session("US", date(2025, 11, 28))
    assert half is not None and half.half_day


def test_none_creates_the_missing_runs_and_leaves_every_other_one() -> None:
    assert actions(Reprocess.NONE) == [
        (date(2025, 11, 24), Action.LEAVE),  # waiting for its data
        (date(2025, 11, 25), Action.LEAVE),  # in progress
        (date(2025, 11, 26), Action.LEAVE),  # COMPLETED
        (date(2025, 11, 28), Action.CREATE),  # the half day: a session, missing
        (date(2025, 12, 1), Action.LEAVE),  # FAILED
        (date(2025, 12, 2), Action.LEAVE),  # in progress
    ]
    plan = plan_backfill(us_sessions(), existing(), Reprocess.NONE)
    assert [p.why for p in plan if p.action is Action.LEAVE] == [
        "waiting for its data",
        "in progress (DATA_READY)",
        "COMPLETED (--reprocess all redoes it)",
        "FAILED (--reprocess failed redoes it)",
        "in progress (UNIVERSES_DONE)",
    ]
    assert 99 not in {p.run_id for p in plan}  # the holiday's run is not a session's


def test_failed_resets_the_failed_runs_and_all_the_completed_ones_too() -> None:
    failed = dict(actions(Reprocess.FAILED))
    assert failed[date(2025, 12, 1)] is Action.RESET
    assert failed[date(2025, 11, 26)] is Action.LEAVE
    everything = dict(actions(Reprocess.ALL))
    assert everything[date(2025, 12, 1)] is Action.RESET
    assert everything[date(2025, 11, 26)] is Action.RESET
    assert [everything[d] for d in (date(2025, 11, 24), date(2025, 11, 25), date(2025, 12, 2))] == [
        Action.LEAVE
    ] * 3  # active runs are never reset


def test_a_run_reset_for_this_reason_already_is_left() -> None:
    runs = [
        ExistingRun(r.run_id, r.as_of_date, r.region, r.phase, reprocessed=True) for r in existing()
    ]
    plan = plan_backfill(us_sessions(), runs, Reprocess.ALL)
    assert [p for p in plan if p.action is Action.RESET] == []
    assert {p.why for p in plan if p.phase in (Phase.COMPLETED, Phase.FAILED)} == {
        "COMPLETED, reprocessed for this reason already",
        "FAILED, reprocessed for this reason already",
    }


def test_several_regions_are_planned_by_date_then_region() -> None:
    sessions = {"US": [date(2025, 12, 1), date(2025, 12, 2)], "EU": [date(2025, 12, 1)]}
    plan = plan_backfill(sessions, [], Reprocess.NONE)
    assert [(p.as_of_date, p.region) for p in plan] == [
        (date(2025, 12, 1), "EU"),
        (date(2025, 12, 1), "US"),
        (date(2025, 12, 2), "US"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": END, "end": START}, "--from 2025-12-02 is after --to 2025-11-24"),
        ({"regions": ()}, "name at least one --region"),
        ({"reprocess": Reprocess.FAILED}, "--reason must say why"),
        ({"reprocess": Reprocess.ALL, "reason": " "}, "--reason must say why"),
    ],
)
def test_a_request_that_makes_no_sense_is_bad_input(
    kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"start": START, "end": END, "regions": ("US",), **kwargs}
    with pytest.raises(InputError, match=message):
        BackfillRequest(**args)  # type: ignore[arg-type]  # the cases' values vary in type
