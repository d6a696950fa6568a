"""Integrations with DAG orchestrators, each behind an extra of its own.

``prometheus.integrations.airflow`` (extra ``airflow``) and
``prometheus.integrations.dagster`` (extra ``dagster``) wrap the orchestrator-neutral
helpers of ``prometheus.orchestration.steering`` and ``.waiting``: they only ask for
transitions and wait for phases. Nothing else in the package imports them, so the core
installs and imports without any orchestrator.
"""
