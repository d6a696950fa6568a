"""The two channels and their payloads, parsed by one function.

A notification only wakes the reactor: the row decides. So parsing checks shapes and
types and nothing more, and anything malformed is logged and dropped, never trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from prometheus.errors import PrometheusError

#: Payloads above this are not ours (the trigger's are ~100 bytes); NOTIFY allows 8000.
MAX_PAYLOAD_BYTES = 1024


class Channel(StrEnum):
    ENGINE_RUNS = "prometheus_engine_runs"
    INGESTION = "prometheus_ingestion"


class MalformedPayload(PrometheusError):
    """A notification on our channels that is not what our triggers send."""


@dataclass(frozen=True)
class RunChanged:
    """``prometheus_engine_runs``: a run was created or changed phase."""

    run_id: int
    phase: str


@dataclass(frozen=True)
class DataArrived:
    """``prometheus_ingestion``: a dataset was completed for a date and region."""

    as_of_date: date
    region: str
    dataset: str


Notification = RunChanged | DataArrived


def parse_notification(channel: str, payload: str) -> Notification:
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise MalformedPayload(f"payload of {len(payload.encode())} bytes on {channel}")
    try:
        data = json.loads(payload)
    except ValueError:
        raise MalformedPayload(f"payload on {channel} is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedPayload(f"payload on {channel} is not a JSON object")
    if channel == Channel.ENGINE_RUNS:
        return RunChanged(run_id=_int(data, "run_id"), phase=_str(data, "phase"))
    if channel == Channel.INGESTION:
        return DataArrived(
            as_of_date=_date(data, "as_of_date"),
            region=_str(data, "region"),
            dataset=_str(data, "dataset"),
        )
    raise MalformedPayload(f"unknown channel {channel!r}")


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MalformedPayload(f"{key} must be a positive integer, got {value!r:.40}")
    return value


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > 64:
        raise MalformedPayload(f"{key} must be a short non-empty string, got {value!r:.40}")
    return value


def _date(data: dict[str, Any], key: str) -> date:
    value = _str(data, key)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise MalformedPayload(f"{key} must be YYYY-MM-DD, got {value!r:.40}") from None
