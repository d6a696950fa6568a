"""Phase tasks that do nothing: the engine's own overhead, measured alone.

Used as ``PROMETHEUS_PHASE_TASKS=prometheus.bench.noop_tasks`` by ``bench throughput``.
"""

from __future__ import annotations

from prometheus.pipeline.context import TaskContext


def signals(ctx: TaskContext) -> None:
    """Nothing: the benchmark measures the orchestration, not the work."""


def universes(ctx: TaskContext) -> None:
    """Nothing."""


def books(ctx: TaskContext) -> None:
    """Nothing."""
