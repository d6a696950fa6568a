"""Run the ``prometheus`` CLI in-process, as a cron job or an operator would call it."""

from __future__ import annotations

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


def invoke(capsys: pytest.CaptureFixture[str], db_url: str, *args: str) -> Result:
    capsys.readouterr()  # drop anything earlier, so the result is this command's alone
    code = run(["--database-url", db_url, *args])
    out, err = capsys.readouterr()
    return Result(code, out, err)
