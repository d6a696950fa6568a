"""The Airflow provider of Prometheus engine runs (extra ``airflow``).

- ``operators``: ``MarkDataReadyOperator``, ``AdvanceRunOperator``;
- ``sensors``: ``EngineRunSensor``, deferrable: it waits in the triggerer, holding no
  worker, and is woken by the engine's own NOTIFY;
- ``triggers``: ``EngineRunPhaseTrigger``, the LISTEN-driven wait it defers to;
- ``provider``: ``get_provider_info``, the ``apache_airflow_provider`` entry point.

This package's ``__init__`` imports nothing from Airflow: Airflow loads the provider's
entry point while it discovers providers, before it is ready to import operators.
"""
