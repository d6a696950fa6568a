"""The named-query loader, and the bond between sql/queries and the code (no database)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import TextClause

from prometheus.db.queries import SQL_ROOT, load_queries, parse_queries, query

PACKAGE = Path(__file__).resolve().parents[2] / "prometheus"
_CALL = re.compile(r"""\bquery\(\s*["'](\w+)["']\s*\)""")
_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def _names_used_in_source() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in _CALL.findall(path.read_text()):
            used.setdefault(name, []).append(str(path.relative_to(PACKAGE.parent)))
    return used


def _headers_in_files() -> list[str]:
    return [
        name
        for path in sorted((SQL_ROOT / "queries").glob("*.sql"))
        for name in _HEADER.findall(path.read_text())
    ]


def test_parse_splits_on_name_headers_and_strips_the_semicolon() -> None:
    source = (
        "-- name: first\n"
        "-- What it is for.\n"
        "SELECT 1;\n"
        "\n"
        "--name:second\n"
        "UPDATE t SET x = :x\n"
        "WHERE id = :id;\n"
    )
    parsed = parse_queries(source)
    assert list(parsed) == ["first", "second"]
    assert parsed["first"] == "-- What it is for.\nSELECT 1"
    assert parsed["second"] == "UPDATE t SET x = :x\nWHERE id = :id"


def test_parse_ignores_text_before_the_first_header() -> None:
    assert parse_queries("-- a file comment\n-- name: only\nSELECT 2;") == {"only": "SELECT 2"}


def test_parse_refuses_a_name_defined_twice() -> None:
    with pytest.raises(ValueError, match="'twice' is defined twice"):
        parse_queries("-- name: twice\nSELECT 1;\n-- name: twice\nSELECT 2;")


def test_names_are_unique_across_all_query_files() -> None:
    headers = _headers_in_files()
    duplicates = sorted({n for n in headers if headers.count(n) > 1})
    assert duplicates == []
    assert sorted(load_queries()) == sorted(headers)


def test_no_query_is_empty() -> None:
    empty = [name for name, sql in load_queries().items() if not sql.strip()]
    assert empty == []


def test_every_named_query_is_used_in_the_package() -> None:
    used = _names_used_in_source()
    unused = sorted(set(load_queries()) - set(used))
    assert unused == [], f"queries no code asks for (delete them or use them): {unused}"


def test_every_query_the_package_asks_for_exists() -> None:
    missing = {n: where for n, where in _names_used_in_source().items() if n not in load_queries()}
    assert missing == {}


def test_query_returns_one_cached_text_clause_with_its_binds() -> None:
    clause = query("get_run")
    assert isinstance(clause, TextClause)
    assert query("get_run") is clause
    assert set(clause._bindparams) == {"run_id"}


def test_an_unknown_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        query("no_such_query")
