"""``get_provider_info``: what ``airflow providers list`` shows for this distribution.

Registered as the ``apache_airflow_provider`` entry point in pyproject.toml. Airflow calls
it while discovering providers, so it imports nothing from Airflow; ``package-name``
must be the distribution's name, or discovery refuses the provider.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

DISTRIBUTION = "prometheus-engine-runs"
INTEGRATION = "Prometheus engine runs"
PACKAGE = "prometheus.integrations.airflow"


def get_provider_info() -> dict[str, Any]:
    def modules(kind: str) -> list[dict[str, Any]]:
        return [{"integration-name": INTEGRATION, "python-modules": [f"{PACKAGE}.{kind}"]}]

    return {
        "package-name": DISTRIBUTION,
        "name": INTEGRATION,
        # Airflow's table drops underscores: the description has none.
        "description": "Operators, a deferrable sensor and a LISTEN-driven trigger"
        " for Prometheus engine runs.",
        "versions": [version(DISTRIBUTION)],
        "integrations": [{"integration-name": INTEGRATION, "tags": ["software"]}],
        "operators": modules("operators"),
        "sensors": modules("sensors"),
        "triggers": modules("triggers"),
    }
