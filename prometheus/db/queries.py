"""Named runtime queries, loaded from ``sql/queries/*.sql``: the one place that finds ``sql/``.

Each query sits under a ``-- name: some_name`` header (procrastinate's habit): SQL stays
SQL, reviewable and greppable, and Python asks for it by name with ``:param`` binds.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from sqlalchemy import TextClause, text

SQL_ROOT = Path(__file__).resolve().parents[1] / "sql"  # the package's link to sql/
_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_queries(source: str) -> dict[str, str]:
    """Split a file into ``{name: sql}``; a repeated name is a programming error."""
    parts = _HEADER.split(source)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in found:
            raise ValueError(f"query {name!r} is defined twice")
        found[name] = body.strip().rstrip(";")
    return found


@functools.cache
def load_queries(root: Path = SQL_ROOT) -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted((root / "queries").glob("*.sql")):
        for name, sql in parse_queries(path.read_text()).items():
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice ({path.name})")
            queries[name] = sql
    return queries


@functools.cache
def query(name: str) -> TextClause:
    """The named query as a SQLAlchemy ``text()`` clause, built once."""
    return text(load_queries()[name])
