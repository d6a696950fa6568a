"""Payload parsing: the shapes our triggers send are accepted whatever their size; any
other shape is MalformedPayload (logged and dropped by the listener)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from prometheus.orchestration.notifications import (
    Channel,
    DataArrived,
    MalformedPayload,
    RunChanged,
    parse_notification,
)

#: A well-formed payload just under NOTIFY's 8,000 bytes.
NEAR_LIMIT = "Z" * 7_900


def test_a_trigger_payload_of_either_channel_parses() -> None:
    assert parse_notification(
        Channel.ENGINE_RUNS,
        '{"run_id": 7, "as_of_date": "2026-11-24", "region": "US", "phase": "DATA_READY"}',
    ) == RunChanged(7, "DATA_READY", date(2026, 11, 24), "US")
    payload = {"as_of_date": "2026-11-24", "region": "US", "dataset": "a", "dataset_count": 3}
    assert parse_notification(Channel.INGESTION, json.dumps(payload)) == DataArrived(
        date(2026, 11, 24), "US", "a", 3
    )


@pytest.mark.parametrize(
    ("channel", "payload"),
    [
        (Channel.ENGINE_RUNS, {"run_id": 7, "phase": "DATA_READY", "region": NEAR_LIMIT}),
        (
            Channel.INGESTION,
            {"as_of_date": "2026-11-24", "region": NEAR_LIMIT, "dataset": "p", "dataset_count": 1},
        ),
        (
            Channel.INGESTION,
            {"as_of_date": "2026-11-24", "region": "US", "dataset": NEAR_LIMIT, "dataset_count": 1},
        ),
    ],
)
def test_size_and_long_values_alone_are_not_malformed(
    channel: Channel, payload: dict[str, object]
) -> None:
    text = json.dumps(payload)
    assert 7_900 < len(text.encode()) < 8_000
    parse_notification(channel, text)


@pytest.mark.parametrize(
    ("channel", "payload"),
    [
        (Channel.ENGINE_RUNS, NEAR_LIMIT),
        (Channel.ENGINE_RUNS, json.dumps({"run_id": NEAR_LIMIT, "phase": "DATA_READY"})),
        (Channel.INGESTION, json.dumps({"as_of_date": "2026-11-24", "region": "US"})),
        (
            Channel.INGESTION,
            json.dumps(
                {"as_of_date": "2026-11-24", "region": "US", "dataset": "p", "dataset_count": "2"}
            ),
        ),
        ("another_channel", '{"run_id": 7, "phase": "DATA_READY"}'),
    ],
)
def test_other_shapes_are_malformed(channel: str, payload: str) -> None:
    with pytest.raises(MalformedPayload):
        parse_notification(channel, payload)
