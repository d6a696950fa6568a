"""``python -m prometheus.scripts.show_engine_runs``: every run's state as CSV on stdout."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from prometheus.cli.app import run
from prometheus.scripts.run_engine_state import OneLineParser


def main(argv: Sequence[str] | None = None) -> int:
    # --database-url is a root option: take it from anywhere (and in its --opt=value form
    # too); the rest are `runs list` filters (--phase, --region).
    parser = OneLineParser(prog="show_engine_runs", add_help=False, allow_abbrev=False)
    parser.add_argument("--database-url")
    known, filters = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    root = ["--database-url", known.database_url] if known.database_url else []
    return run([*root, "runs", "list", "--format", "csv", *filters], prog_name="show_engine_runs")


if __name__ == "__main__":
    sys.exit(main())
