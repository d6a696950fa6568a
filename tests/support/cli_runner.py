"""Run the ``prometheus`` CLI (or a seed script) in-process, as cron or an operator would."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

from prometheus.cli.app import run


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()


def invoke_main(
    capsys: pytest.CaptureFixture[str], main: Callable[[Sequence[str]], int], args: Sequence[str]
) -> Result:
    capsys.readouterr()  # drop anything earlier, so the result is this command's alone
    code = main(list(args))
    out, err = capsys.readouterr()
    return Result(code, out, err)


def invoke(capsys: pytest.CaptureFixture[str], db_url: str, *args: str) -> Result:
    """``prometheus --database-url DB_URL ARGS...``"""
    return invoke_main(capsys, run, ["--database-url", db_url, *args])
