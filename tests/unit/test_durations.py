"""Durations as operators type them (pure, no database)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from prometheus.durations import parse_duration
from prometheus.errors import InputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("90", timedelta(seconds=90)),
        ("0", timedelta(0)),
        ("1.5h", timedelta(minutes=90)),
        ("0.25s", timedelta(milliseconds=250)),
        (" 2H ", timedelta(hours=2)),
        ("10 m", timedelta(minutes=10)),
    ],
)
def test_parse_duration_accepts_units_and_plain_seconds(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "s", "abc", "-5s", "5w", "1h30m", "1e3", "2 hours", ".5s"])
def test_parse_duration_rejects_anything_else_naming_the_text(text: str) -> None:
    with pytest.raises(InputError, match="invalid duration") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)
    assert caught.value.exit_code == 2
