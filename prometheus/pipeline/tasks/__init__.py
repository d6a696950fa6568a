"""The reference phase tasks: real, deterministic work on ``prices_daily``.

This package is itself a valid ``PROMETHEUS_PHASE_TASKS`` module. Every task deletes
its run's rows before writing them, inside the phase transaction, so rerunning a phase
for the same run gives the same rows, never duplicates.
"""

from prometheus.pipeline.tasks.books import books
from prometheus.pipeline.tasks.signals import signals
from prometheus.pipeline.tasks.universes import universes

__all__ = ["books", "signals", "universes"]
