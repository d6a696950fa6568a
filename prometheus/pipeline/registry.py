"""Which callables do each phase's work: the reference tasks, or a plug-in module's.

``PROMETHEUS_PHASE_TASKS=some.module`` is how real engine code plugs in: that module's
``signals``, ``universes`` and ``books`` replace the reference ones, one by one.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from types import MappingProxyType, ModuleType

from prometheus.errors import InputError
from prometheus.pipeline import tasks as reference
from prometheus.pipeline.context import PhaseTask
from prometheus.pipeline.phases import TASK_OF, Phase


@functools.cache
def phase_tasks(module_name: str | None) -> Mapping[Phase, PhaseTask]:
    """The task for each workable phase; a name the plug-in lacks falls back to the reference."""
    plugin = _import(module_name) if module_name else None
    chosen: dict[Phase, PhaseTask] = {}
    for phase, name in TASK_OF.items():
        task = getattr(plugin, name, None) or getattr(reference, name)
        if not callable(task):
            raise InputError(f"PROMETHEUS_PHASE_TASKS: {module_name}.{name} is not callable")
        chosen[phase] = task
    return MappingProxyType(chosen)


def _import(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"PROMETHEUS_PHASE_TASKS: cannot import {module_name!r}: {exc}") from None
