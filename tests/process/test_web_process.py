"""``prometheus web`` as an operator starts it: a real process, found by its log line,
answering over HTTP, and stopping cleanly on SIGTERM; bad usage is one line and exit 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from signal import Signals

import pytest

from tests.support.cli_runner import invoke
from tests.support.reactor_process import process_env
from tests.support.waiting import wait_until


def _started_url(log: Path) -> str | None:
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and (event := json.loads(line)).get("event") == "web.started":
            return str(event["url"])
    return None


@pytest.mark.slow
def test_the_console_serves_until_sigterm(db_url: str, tmp_path: Path) -> None:
    log = tmp_path / "web.log"
    env = process_env(db_url, tmp_path, PROMETHEUS_WEB_USER="ops", PROMETHEUS_WEB_PASSWORD="pw")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            # This interpreter's package, not whatever `prometheus` is on PATH: the README
            # runs `.venv/bin/pytest` without activating the venv.
            [sys.executable, "-m", "prometheus", "web", "--port", "0"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = wait_until(lambda: _started_url(log), what="web.started in the log")
        assert url is not None
        assert url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
        with urllib.request.urlopen(f"{url}/runs", timeout=10) as response:
            assert response.status == 200
            assert "<h1>Runs</h1>" in response.read().decode()
        proc.send_signal(Signals.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["web", "--port", "70000"], "'--port': Input should be less than or equal to 65535"),
        (["web", "--port", "nope"], "'--port': Input should be a valid integer"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], db_url: str, args: list[str], message: str
) -> None:
    result = invoke(capsys, db_url, *args)
    assert result.code == 2
    assert len(result.err_lines) == 1 and message in result.err


def test_half_a_login_is_refused_before_serving(
    capsys: pytest.CaptureFixture[str], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_WEB_USER", "ops")
    monkeypatch.delenv("PROMETHEUS_WEB_PASSWORD", raising=False)
    result = invoke(capsys, db_url, "web", "--port", "0")
    assert result.code == 2
    assert result.err_lines == [
        "prometheus: error: set both PROMETHEUS_WEB_USER and PROMETHEUS_WEB_PASSWORD, or "
        "neither (without them `prometheus web` is read-only)"
    ]


def test_a_port_in_use_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = invoke(capsys, db_url, "web", "--port", str(port))
    assert result.code == 1
    assert result.err_lines[-1].startswith(f"prometheus: error: cannot listen on 127.0.0.1:{port}")
