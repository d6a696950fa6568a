"""Real reactor processes (``reactors``); a failed test shows what each of them logged."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.support.reactor_process import ReactorProcesses
from tests.support.reactor_process import reactors as reactors


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and report.when != "teardown":
        for procs in getattr(item, "funcargs", {}).values():
            if isinstance(procs, ReactorProcesses):
                for title, text in procs.outputs():
                    report.sections.append((title, text))
    return report
