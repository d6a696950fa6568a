"""``prometheus bench``: speed measured on a scratch database, printed as numbers.

Every scenario creates its own database on the configured server (or the embedded one)
and drops it afterwards: a benchmark never touches real data.

Each scenario takes ``progress``, told in a few words what it is doing ("run 120/520"):
the CLI shows it on a terminal, since some take a minute. It is never called on the
measured path (only between samples, or by a process that waits for others).
"""

from collections.abc import Callable

Progress = Callable[[str], None]


def silent(doing: str) -> None:
    """Progress that shows nothing (a test, a script)."""
