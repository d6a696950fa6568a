"""Ingestion on a real database: files are validated whole before anything is written,
prices load by COPY (reruns replace), batches open RUNNING and end COMPLETE or FAILED.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from prometheus.errors import InputError
from prometheus.ingestion import (
    BatchStatus,
    InvalidCsv,
    copy_prices,
    dataset_states,
    ingestion_batch,
    load_instruments,
    load_prices,
    read_instruments_csv,
    read_prices_csv,
    require_datasets,
)
from prometheus.pipeline.phases import Phase
from prometheus.pipeline.state import find_run
from tests.support.ingestion_data import (
    PRICES_HEADER,
    add_instruments,
    price_rows,
    snapshot,
    write_prices,
)

DAY = date(2026, 3, 2)
GOOD_ROW = "1.5,2,1,1.8,100"

BAD_PRICE_FILES: dict[str, tuple[str | bytes, list[tuple[int, str]]]] = {
    "other header": ("instrument,open,high,low,close,volume\nA,1,1,1,1,1\n", [(1, "header is")]),
    "columns reordered": (
        "instrument_id,high,open,low,close,volume\nA,1,1,1,1,1\n",
        [(1, "header is")],
    ),
    "extra column": (f"{PRICES_HEADER},currency\nA,1,1,1,1,1,USD\n", [(1, "header is")]),
    "empty file": ("", [(1, "empty file")]),
    "blank file": ("\n\n", [(1, "empty file")]),
    "header only": (f"{PRICES_HEADER}\n", [(2, "no data rows")]),
    "too few fields": (f"{PRICES_HEADER}\nA,1,2,1,1\n", [(2, "expected 6 fields, got 5")]),
    "too many fields": (f"{PRICES_HEADER}\nA,1,2,1,1,1,1\n", [(2, "expected 6 fields, got 7")]),
    "text price": (f"{PRICES_HEADER}\nA,abc,2,1,1,1\n", [(2, "open 'abc' is not a number")]),
    "negative price": (f"{PRICES_HEADER}\nA,1,2,-1,1,1\n", [(2, "low '-1' is not a positive")]),
    "zero price": (f"{PRICES_HEADER}\nA,1,2,1,0,1\n", [(2, "close '0' is not a positive")]),
    "nan price": (f"{PRICES_HEADER}\nA,nan,2,1,1,1\n", [(2, "open 'nan' is not a number")]),
    "infinite price": (f"{PRICES_HEADER}\nA,1,1e400,1,1,1\n", [(2, "high '1e400' is not a pos")]),
    "padded price": (f"{PRICES_HEADER}\nA, 1,2,1,1,1\n", [(2, "open ' 1' is not a number")]),
    "underscored price": (f"{PRICES_HEADER}\nA,1_0,20,1,1,1\n", [(2, "open '1_0' is not")]),
    "high below low": (f"{PRICES_HEADER}\nA,1,1,2,1.5,1\n", [(2, "high 1.0 is below low 2.0")]),
    "negative volume": (f"{PRICES_HEADER}\nA,{GOOD_ROW[:-4]},-5\n", [(2, "volume '-5' is not")]),
    "fractional volume": (f"{PRICES_HEADER}\nA,1,2,1,1,1.5\n", [(2, "volume '1.5' is not")]),
    "huge volume": (
        f"{PRICES_HEADER}\nA,1,2,1,1,9223372036854775808\n",
        [(2, "volume 9223372036854775808 is larger")],
    ),
    "empty instrument": (f"{PRICES_HEADER}\n,{GOOD_ROW}\n", [(2, "empty instrument_id")]),
    "duplicate instrument": (
        f"{PRICES_HEADER}\nA,{GOOD_ROW}\nB,{GOOD_ROW}\nA,{GOOD_ROW}\n",
        [(4, "duplicate instrument 'A' (line 2)")],
    ),
    "unknown instrument": (
        f"{PRICES_HEADER}\nA,{GOOD_ROW}\nNOPE,{GOOD_ROW}\n",
        [(3, "unknown instrument 'NOPE'")],
    ),
    "instrument of another region": (
        f"{PRICES_HEADER}\nA,{GOOD_ROW}\nEU1,{GOOD_ROW}\n",
        [(3, "instrument 'EU1' belongs to region EU, not US")],
    ),
    "NUL byte": (f"{PRICES_HEADER}\nA,{GOOD_ROW}\nB\x00,{GOOD_ROW}\n", [(3, "a NUL byte")]),
    "unclosed quote": (f'{PRICES_HEADER}\nA,{GOOD_ROW}\n"B,1,2,1,1,1\n', [(3, "malformed CSV")]),
    "every problem at once": (
        f"{PRICES_HEADER}\nA,x,2,1,1,1\nNOPE,1,2,1,1,-1\nA,{GOOD_ROW}\nB,1,1,2,1,1\n",
        [
            (2, "open 'x' is not a number"),
            (3, "volume '-1' is not a non-negative integer"),
            (3, "unknown instrument 'NOPE'"),
            (4, "duplicate instrument 'A' (line 2)"),
            (5, "high 1.0 is below low 2.0"),
        ],
    ),
}


@pytest.fixture
def instruments(engine: Engine) -> None:
    add_instruments(engine, "US", ["A", "B", "C"])
    add_instruments(engine, "EU", ["EU1"])
    require_datasets(engine, "US", ["prices"])


@pytest.mark.usefixtures("instruments")
@pytest.mark.parametrize("case", sorted(BAD_PRICE_FILES))
def test_a_bad_prices_file_is_refused_with_every_problem_and_nothing_written(
    case: str, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    content, expected = BAD_PRICE_FILES[case]
    path = tmp_path / "prices.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    before = snapshot(db_url)

    with pytest.raises(InvalidCsv) as refused:
        load_prices(engine, read_prices_csv(path), as_of_date=DAY, region="US")

    got = [(p.line, p.message) for p in refused.value.problems]
    assert len(got) == len(expected), got
    for (line, message), (want_line, fragment) in zip(got, expected, strict=True):
        assert line == want_line and fragment in message, got
    assert (
        str(refused.value).splitlines()[0] == f"{path}: {len(expected)} problem(s), nothing written"
    )
    assert snapshot(db_url) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"instrument_id,open,high,low,close,volume\nA,1,2,1,1,\xff\n", "not UTF-8 text"),
        (None, "cannot read"),
    ],
    ids=["not utf-8", "missing file"],
)
def test_an_unreadable_file_is_one_input_error(
    content: bytes | None, message: str, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "prices.csv"
    if content is not None:
        path.write_bytes(content)
    before = snapshot(db_url)
    with pytest.raises(InputError, match=message):
        read_prices_csv(path)
    assert snapshot(db_url) == before


@pytest.mark.usefixtures("instruments")
def test_a_good_file_loads_and_completes_its_batch_in_one_go(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_prices(tmp_path / "p.csv", price_rows(["A", "B", "C"]))
    record = load_prices(engine, read_prices_csv(path), as_of_date=DAY, region="US")

    assert (record.status, record.row_count) == (BatchStatus.COMPLETE, 3)
    assert record.completed_at is not None and record.completed_at >= record.started_at
    assert _prices(engine) == {(i, DAY): 10.0 for i in "ABC"}
    run = find_run(engine, DAY, "US")
    assert run is not None and run.phase is Phase.DATA_READY


@pytest.mark.usefixtures("instruments")
def test_spreadsheet_habits_are_accepted(engine: Engine, tmp_path: Path) -> None:
    """A byte-order mark, CRLF line ends and blank lines are not data problems."""
    path = tmp_path / "p.csv"
    path.write_bytes(
        b"\xef\xbb\xbf" + f"{PRICES_HEADER}\r\nA,{GOOD_ROW}\r\n\r\nB,{GOOD_ROW}\r\n".encode()
    )
    record = load_prices(engine, read_prices_csv(path), as_of_date=DAY, region="US")
    assert record.row_count == 2


@pytest.mark.usefixtures("instruments")
def test_a_rerun_replaces_that_dates_rows_for_its_instruments(
    engine: Engine, tmp_path: Path
) -> None:
    other_day = date(2026, 3, 3)
    first = write_prices(tmp_path / "first.csv", price_rows(["A", "B", "C"]))
    load_prices(engine, read_prices_csv(first), as_of_date=DAY, region="US")
    load_prices(engine, read_prices_csv(first), as_of_date=other_day, region="US")

    correction = write_prices(tmp_path / "fix.csv", price_rows(["A", "B"], close=12.0))
    record = load_prices(engine, read_prices_csv(correction), as_of_date=DAY, region="US")

    assert (record.status, record.row_count) == (BatchStatus.COMPLETE, 2)
    assert _prices(engine) == {
        ("A", DAY): 12.0,
        ("B", DAY): 12.0,
        ("C", DAY): 10.0,  # not in the correction: kept
        **{(i, other_day): 10.0 for i in "ABC"},  # another date: untouched
    }


@pytest.mark.usefixtures("instruments")
def test_partial_loads_add_up_and_the_last_completes(engine: Engine, tmp_path: Path) -> None:
    part_1 = write_prices(tmp_path / "1.csv", price_rows(["A", "B"]))
    part_2 = write_prices(tmp_path / "2.csv", price_rows(["C"]))

    first = load_prices(engine, read_prices_csv(part_1), as_of_date=DAY, region="US", partial=True)
    assert (first.status, first.row_count, first.completed_at) == (BatchStatus.RUNNING, 2, None)
    assert find_run(engine, DAY, "US") is None

    last = load_prices(engine, read_prices_csv(part_2), as_of_date=DAY, region="US")
    assert (last.status, last.row_count) == (BatchStatus.COMPLETE, 3)
    assert last.started_at == first.started_at
    assert len(_prices(engine)) == 3


@pytest.mark.usefixtures("instruments")
def test_copying_the_same_rows_twice_in_one_transaction_replaces_them(engine: Engine) -> None:
    with engine.begin() as conn:
        copy_prices(conn, DAY, price_rows(["A", "B"]))
        copy_prices(conn, DAY, price_rows(["A", "B"], close=11.0))
        copy_prices(conn, DAY, price_rows(["B", "C"], close=13.0))
    assert _prices(engine) == {("A", DAY): 11.0, ("B", DAY): 13.0, ("C", DAY): 13.0}


@pytest.mark.usefixtures("instruments")
def test_a_failing_job_rolls_back_its_writes_but_the_failed_mark_stays(
    engine: Engine,
) -> None:
    with (
        pytest.raises(RuntimeError, match="feed cut off"),
        ingestion_batch(engine, "prices", DAY, "US") as batch,
    ):
        batch.rows += copy_prices(batch.conn, DAY, price_rows(["A", "B"]))
        raise RuntimeError("feed cut off")

    assert _prices(engine) == {}
    (state,) = dataset_states(engine, as_of_date=DAY, region="US")
    assert (state.status, state.row_count, state.completed_at) == ("FAILED", 0, None)
    assert find_run(engine, DAY, "US") is None


@pytest.mark.usefixtures("instruments")
def test_a_job_may_commit_on_its_own_connections(engine: Engine) -> None:
    """What a job writes in transactions of its own is its business: it stays when the
    job then fails; only the batch's transaction is rolled back."""
    with pytest.raises(RuntimeError), ingestion_batch(engine, "prices", DAY, "US") as batch:
        with engine.begin() as own:
            batch.rows += copy_prices(own, DAY, price_rows(["A"]))
        raise RuntimeError("later step failed")
    assert _prices(engine) == {("A", DAY): 10.0}
    (state,) = dataset_states(engine, as_of_date=DAY, region="US")
    assert state.status == "FAILED"


@pytest.mark.usefixtures("instruments")
def test_a_running_batch_is_visible_while_the_job_runs(engine: Engine) -> None:
    with ingestion_batch(engine, "prices", DAY, "US") as batch:
        (seen,) = dataset_states(engine, as_of_date=DAY, region="US")
        assert (seen.status, seen.required, seen.run_phase) == ("RUNNING", True, None)
        batch.rows += copy_prices(batch.conn, DAY, price_rows(["A"]))
        assert _prices(engine) == {}  # not before the batch commits
    (done,) = dataset_states(engine, as_of_date=DAY, region="US")
    assert (done.status, done.row_count, done.run_phase) == ("COMPLETE", 1, "DATA_READY")


def test_a_required_dataset_without_a_batch_shows_missing(engine: Engine) -> None:
    require_datasets(engine, "US", ["fundamentals", "prices"])
    with ingestion_batch(engine, "prices", DAY, "US"):
        pass
    states = dataset_states(engine, region="US")
    assert [(s.dataset, s.status, s.required) for s in states] == [
        ("fundamentals", "MISSING", True),
        ("prices", "COMPLETE", True),
    ]


def test_a_bad_dataset_name_is_refused_before_anything_is_written(
    engine: Engine, db_url: str
) -> None:
    before = snapshot(db_url)
    with (
        pytest.raises(InputError, match="invalid dataset name"),
        ingestion_batch(engine, "prices; drop", DAY, "US"),
    ):
        pass
    assert snapshot(db_url) == before


def test_instruments_are_upserted_per_region(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    path.write_text("instrument_id,symbol\nA,AAA\nB,BBB\n")
    assert load_instruments(engine, read_instruments_csv(path), region="US") == 2
    path.write_text("instrument_id,symbol\nA,AAA2\nC,CCC\n")
    assert load_instruments(engine, read_instruments_csv(path), region="US") == 2
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM instruments ORDER BY instrument_id")).all()
    assert [tuple(r) for r in rows] == [("A", "US", "AAA2"), ("B", "US", "BBB"), ("C", "US", "CCC")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("instrument_id,name\nA,AAA\n", (1, "header is")),
        ("instrument_id,symbol\nA,\n", (2, "empty symbol")),
        ("instrument_id,symbol\nA,AAA\nA,AAB\n", (3, "duplicate instrument 'A' (line 2)")),
        ("instrument_id,symbol\nB,BBB\nEU1,E\n", (3, "belongs to region EU, not US")),
    ],
    ids=["header", "empty symbol", "duplicate", "other region"],
)
def test_a_bad_instruments_file_is_refused_and_nothing_written(
    content: str, expected: tuple[int, str], engine: Engine, db_url: str, tmp_path: Path
) -> None:
    add_instruments(engine, "EU", ["EU1"])
    path = tmp_path / "i.csv"
    path.write_text(content)
    before = snapshot(db_url)
    with pytest.raises(InvalidCsv) as refused:
        load_instruments(engine, read_instruments_csv(path), region="US")
    ((line, message),) = [(p.line, p.message) for p in refused.value.problems]
    assert line == expected[0] and expected[1] in message
    assert snapshot(db_url) == before


def _prices(engine: Engine) -> dict[tuple[str, date], float]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT instrument_id, as_of_date, close FROM prices_daily"))
        return {(r.instrument_id, r.as_of_date): r.close for r in rows}
