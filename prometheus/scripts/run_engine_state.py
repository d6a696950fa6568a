"""``python -m prometheus.scripts.run_engine_state``: the seed's one-shot run manager.

    --as-of D --region R --ensure [--data-ready] [--force]
                                                   create the run (and declare data in);
                                                   --force allows a non-trading day
    --advance-all                                  one step for every run with work due
    --as-of D --region R [--advance]               show the run, or advance it one step

Every form is safe to repeat, which is what a timer needs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from prometheus.cli.app import run


class OneLineParser(argparse.ArgumentParser):
    """Bad flags: one clear line and exit 2, like the ``prometheus`` command."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def commands(argv: Sequence[str] | None = None) -> list[list[str]]:
    """The ``prometheus`` command lines that these seed flags stand for."""
    parser = OneLineParser(prog="run_engine_state", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--as-of", metavar="YYYY-MM-DD")
    parser.add_argument("--region")
    parser.add_argument("--ensure", action="store_true")
    parser.add_argument("--data-ready", action="store_true")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--advance", action="store_true")
    parser.add_argument("--advance-all", action="store_true")
    args = parser.parse_args(argv)

    root = ["--database-url", args.database_url] if args.database_url else []
    if args.advance_all:
        run_flags = (
            args.as_of,
            args.region,
            args.ensure,
            args.data_ready,
            args.advance,
            args.force,
        )
        if any(run_flags):
            parser.error("--advance-all takes no other run flags")
        return [[*root, "runs", "advance-all"]]
    if not (args.as_of and args.region):
        parser.error("give --as-of and --region, or --advance-all")
    if args.data_ready and not args.ensure:
        parser.error("--data-ready goes with --ensure")
    if args.force and not args.ensure:
        parser.error("--force goes with --ensure")
    target = ["--as-of", args.as_of, "--region", args.region]
    steps: list[list[str]] = []
    if args.ensure:
        flags = [
            *(["--data-ready"] if args.data_ready else []),
            *(["--force"] if args.force else []),
        ]
        steps.append([*root, "runs", "ensure", *target, *flags])
    if args.advance:
        steps.append([*root, "runs", "advance", *target])
    return steps or [[*root, "runs", "show", *target]]


def main(argv: Sequence[str] | None = None) -> int:
    for command in commands(argv):
        code = run(command, prog_name="run_engine_state")
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
