"""``prometheus bench web`` end to end, once, small (3 sessions, 1 request per page), in a
process whose stderr is a terminal (a pty): the numbers on stdout, and the progress of
its stages (a scratch database, the seed, each page) drawn on stderr as every bench
draws it. Speed itself is not asserted (the README has the numbers)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading

from prometheus.config import subprocess_environment


def test_bench_web_measures_each_page_and_shows_its_progress_on_a_terminal(
    server_url: str,
) -> None:
    leader, follower = pty.openpty()
    drawn = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the process closed the terminal's last writer
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=read_terminal, name="pty-reader", daemon=True)
    reader.start()
    try:
        args = ["--database-url", server_url, "bench", "web", "--sessions", "3"]
        done = subprocess.run(
            [sys.executable, "-m", "prometheus", *args, "--requests", "1", "--json"],
            env=subprocess_environment(COLUMNS="200"),
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        os.close(follower)
        reader.join(10)
        os.close(leader)
    terminal = drawn.decode(errors="replace")
    assert done.returncode == 0, terminal
    measured = json.loads(done.stdout)
    for page in ("overview", "run_page", "runs_list"):
        assert measured[f"{page}_p50_ms"] > 0, measured
    for stage in (
        "bench web: creating a scratch database",
        "bench web: seeding 3 sessions of 4 regions",
        "bench web: GET /?sessions=3: 5 + 1 requests",
        "bench web: GET /runs/1: 5 + 1 requests",
    ):
        assert stage in terminal, terminal
    assert terminal.endswith("\r\x1b[2K"), repr(terminal[-80:])  # the line cleared at the end
