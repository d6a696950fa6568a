"""Dagster tests: real reactor processes (``reactors``), and Dagster's in-process tools
(``materialize``, ``build_sensor_context``, an ephemeral instance): no daemon, no webserver."""

from __future__ import annotations

from tests.support.reactor_process import reactors as reactors
