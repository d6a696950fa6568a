"""The provider is found the way Airflow finds providers: ``airflow providers list``."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

pytest.importorskip("airflow", reason="the airflow extra is not installed")

from prometheus.integrations.airflow.provider import DISTRIBUTION, get_provider_info
from tests.airflow.conftest import AIRFLOW


def test_airflow_providers_list_shows_the_provider() -> None:
    listed = subprocess.run(
        [AIRFLOW, "providers", "list", "--output", "json"],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    providers = {p["package_name"]: p for p in json.loads(listed.stdout)}
    assert providers[DISTRIBUTION]["version"] == get_provider_info()["versions"][0]
    assert "LISTEN-driven trigger" in providers[DISTRIBUTION]["description"]


def test_the_provider_names_its_operators_sensor_and_trigger_modules() -> None:
    info = get_provider_info()
    modules = {
        kind: [m for group in info[kind] for m in group["python-modules"]]
        for kind in ("operators", "sensors", "triggers")
    }
    assert modules == {
        "operators": ["prometheus.integrations.airflow.operators"],
        "sensors": ["prometheus.integrations.airflow.sensors"],
        "triggers": ["prometheus.integrations.airflow.triggers"],
    }
    for names in modules.values():
        for name in names:
            __import__(name)
