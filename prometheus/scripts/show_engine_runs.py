"""``python -m prometheus.scripts.show_engine_runs``: every run's state as CSV on stdout."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from prometheus.cli.app import run


def main(argv: Sequence[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    root = extra[:2] if extra[:1] == ["--database-url"] else []
    filters = extra[len(root) :]
    return run([*root, "runs", "list", "--format", "csv", *filters], prog_name="show_engine_runs")


if __name__ == "__main__":
    sys.exit(main())
