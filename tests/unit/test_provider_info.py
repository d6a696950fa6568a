"""The Airflow provider's entry point, without Airflow: Airflow calls it while it discovers
providers, before it can import operators, and refuses it unless ``package-name`` is the
distribution's own name."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points, metadata


def test_the_entry_point_names_this_distribution() -> None:
    ours = entry_points(group="apache_airflow_provider", name="provider_info")
    [entry] = [e for e in ours if e.dist is not None and e.dist.name == "prometheus-engine-runs"]
    info = entry.load()()
    assert info["package-name"] == metadata("prometheus-engine-runs")["Name"]
    assert info["versions"] == [metadata("prometheus-engine-runs")["Version"]]


def test_loading_the_entry_point_imports_no_airflow() -> None:
    probe = (
        "import sys; from prometheus.integrations.airflow.provider import get_provider_info;"
        " get_provider_info();"
        " print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
