"""Durations as operators type them: ``45s``, ``15m``, ``2h``, ``1d`` or plain seconds."""

from __future__ import annotations

import re
from datetime import timedelta

from prometheus.errors import InputError

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse ``45s|15m|2h|1d|N``; anything else is an InputError naming the bad text."""
    match = _PATTERN.match(text.lower())
    if match is None:
        raise InputError(f"invalid duration {text!r}: use 45s, 15m, 2h, 1d or plain seconds")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])
