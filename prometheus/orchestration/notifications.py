"""Our channels and their payloads, parsed by one function.

A notification only wakes the reactor: the row decides. So parsing checks shapes and
types and nothing more, and anything malformed is logged and dropped, never trusted.
Every payload the database can deliver (NOTIFY refuses 8,000 bytes and more) is accepted
when its shape is right: our triggers cut the text they send (to 64 characters, see
sql/triggers/0009_key_only_payloads.sql), but neither size nor a long value makes a
payload malformed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from prometheus.errors import PrometheusError


class Channel(StrEnum):
    ENGINE_RUNS = "prometheus_engine_runs"
    INGESTION = "prometheus_ingestion"
    HOLDS = "prometheus_holds"


class MalformedPayload(PrometheusError):
    """A notification on our channels that is not what our triggers send."""


@dataclass(frozen=True)
class RunChanged:
    """``prometheus_engine_runs``: a run was created or changed phase.

    The trigger also sends the run's key; a waiter that does not know the run's id yet
    (the run may not exist) matches on it. Other senders may leave it out."""

    run_id: int
    phase: str
    as_of_date: date | None = None
    region: str | None = None


@dataclass(frozen=True)
class DataArrived:
    """``prometheus_ingestion``: datasets were completed for a date and region (one
    statement: ``dataset`` is the first of them by name, ``dataset_count`` how many)."""

    as_of_date: date
    region: str
    dataset: str
    dataset_count: int


@dataclass(frozen=True)
class HoldsReleased:
    """``prometheus_holds``: holds were released (one statement: ``hold_id`` is the first
    of them, ``hold_count`` how many). The runs they held may be due now."""

    hold_id: int
    hold_count: int


Notification = RunChanged | DataArrived | HoldsReleased


def parse_notification(channel: str, payload: str) -> Notification:
    try:
        data = json.loads(payload)
    except ValueError:
        raise MalformedPayload(f"payload on {channel} is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedPayload(f"payload on {channel} is not a JSON object")
    if channel == Channel.ENGINE_RUNS:
        return RunChanged(
            run_id=_int(data, "run_id"),
            phase=_str(data, "phase"),
            as_of_date=_date(data, "as_of_date") if "as_of_date" in data else None,
            region=_str(data, "region") if "region" in data else None,
        )
    if channel == Channel.HOLDS:
        return HoldsReleased(hold_id=_int(data, "hold_id"), hold_count=_int(data, "hold_count"))
    if channel == Channel.INGESTION:
        return DataArrived(
            as_of_date=_date(data, "as_of_date"),
            region=_str(data, "region"),
            dataset=_str(data, "dataset"),
            dataset_count=_int(data, "dataset_count"),
        )
    raise MalformedPayload(f"unknown channel {channel!r}")


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MalformedPayload(f"{key} must be a positive integer, got {value!r:.40}")
    return value


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"{key} must be a non-empty string, got {value!r:.40}")
    return value


def _date(data: dict[str, Any], key: str) -> date:
    value = _str(data, key)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise MalformedPayload(f"{key} must be YYYY-MM-DD, got {value!r:.40}") from None
