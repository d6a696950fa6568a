"""Settings from the environment and flags, validation, and DSN redaction (no database)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import timedelta
from pathlib import Path

import pytest

from prometheus.config import (
    MAX_ATTEMPTS_DEFAULT,
    PHASE_TIMEOUT_SECONDS_DEFAULT,
    RETRY_BASE_SECONDS_DEFAULT,
    Settings,
    known_database_urls,
    libpq_url,
    redact,
    redact_urls,
)
from prometheus.errors import InputError

URL = "postgresql://alice:s3cr3t-Pw@db.example:5432/prod"


def test_defaults_from_an_empty_environment() -> None:
    s = Settings.from_env({})
    assert s.database_url is None
    assert s.home == Path("~/.local/share/prometheus").expanduser()
    assert s.max_attempts == MAX_ATTEMPTS_DEFAULT == 3
    assert s.retry_base == timedelta(seconds=RETRY_BASE_SECONDS_DEFAULT) == timedelta(seconds=10)
    assert s.phase_timeout == timedelta(seconds=PHASE_TIMEOUT_SECONDS_DEFAULT)
    assert s.phase_timeout == timedelta(hours=1)
    assert s.phase_tasks is None
    assert s.os_user  # the operator's user, for audit rows
    assert s.redacted_dsn() == "(embedded)"
    assert s.embedded_home == s.home / "pgdata"


def test_environment_variables_are_read() -> None:
    s = Settings.from_env(
        {
            "PROMETHEUS_DATABASE_URL": URL,
            "PROMETHEUS_HOME": "/srv/prometheus",
            "PROMETHEUS_MAX_ATTEMPTS": "5",
            "PROMETHEUS_RETRY_BASE_SECONDS": "2.5",
            "PROMETHEUS_PHASE_TIMEOUT": "90",
            "PROMETHEUS_PHASE_TASKS": "engine.tasks",
            "PROMETHEUS_REGION_EXCHANGES": "us=xnys, EU = XETR",
            "UNRELATED": "ignored",
        }
    )
    assert s.database_url == URL
    assert s.home == Path("/srv/prometheus")
    assert s.max_attempts == 5
    assert s.retry_base == timedelta(seconds=2.5)
    assert s.phase_timeout == timedelta(seconds=90)
    assert s.phase_tasks == "engine.tasks"
    assert dict(s.region_exchanges) == {"US": "XNYS", "EU": "XETR"}


def test_flags_override_the_environment_but_none_does_not() -> None:
    env = {"PROMETHEUS_DATABASE_URL": URL, "PROMETHEUS_MAX_ATTEMPTS": "5"}
    flagged = Settings.from_env(env, database_url="postgresql://bob@other/db", max_attempts=None)
    assert flagged.database_url == "postgresql://bob@other/db"
    assert flagged.max_attempts == 5


def test_empty_variables_count_as_unset() -> None:
    s = Settings.from_env({"PROMETHEUS_DATABASE_URL": "", "PROMETHEUS_MAX_ATTEMPTS": ""})
    assert s.database_url is None
    assert s.max_attempts == MAX_ATTEMPTS_DEFAULT


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(FrozenInstanceError):
        s.max_attempts = 9  # type: ignore[misc]  # the point: assignment must fail


def test_with_database_url_returns_a_new_settings() -> None:
    s = Settings()
    t = s.with_database_url(URL)
    assert t.database_url == URL
    assert s.database_url is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PROMETHEUS_MAX_ATTEMPTS", "0", "MAX_ATTEMPTS must be >= 1"),
        ("PROMETHEUS_MAX_ATTEMPTS", "-2", "MAX_ATTEMPTS must be >= 1"),
        ("PROMETHEUS_MAX_ATTEMPTS", "three", "MAX_ATTEMPTS must be a number"),
        ("PROMETHEUS_MAX_ATTEMPTS", "2.5", "MAX_ATTEMPTS must be a number"),
        ("PROMETHEUS_RETRY_BASE_SECONDS", "-1", "RETRY_BASE_SECONDS must be >= 0"),
        ("PROMETHEUS_RETRY_BASE_SECONDS", "ten", "RETRY_BASE_SECONDS must be a number"),
        ("PROMETHEUS_PHASE_TIMEOUT", "0", "PHASE_TIMEOUT must be > 0"),
        ("PROMETHEUS_PHASE_TIMEOUT", "1h", "PHASE_TIMEOUT must be a number"),
        ("PROMETHEUS_DATABASE_URL", "not a url", "is not valid"),
        ("PROMETHEUS_DATABASE_URL", "mysql://u:p@h/db", "must name PostgreSQL"),
        ("PROMETHEUS_REGION_EXCHANGES", "US", "expected REGION=EXCHANGE"),
        ("PROMETHEUS_REGION_EXCHANGES", "US=XNYS,=XETR", "expected REGION=EXCHANGE"),
    ],
)
def test_invalid_values_are_input_errors(name: str, value: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        Settings.from_env({name: value})
    assert caught.value.exit_code == 2


def test_validation_also_runs_on_direct_construction() -> None:
    with pytest.raises(InputError):
        Settings(max_attempts=0)
    with pytest.raises(InputError):
        Settings(phase_timeout=timedelta(0))
    with pytest.raises(InputError):
        Settings(database_url="sqlite:///x.db")


def test_a_bad_url_error_does_not_echo_the_url() -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env({"PROMETHEUS_DATABASE_URL": "mysql://u:hunter2@h/db"})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "password"),
    [
        (URL, "s3cr3t-Pw"),
        ("postgresql+psycopg://alice:tops3cret@h/db", "tops3cret"),
        ("postgresql://alice:p%40ss%3Aw0rd@h:5433/db?sslmode=require", "p@ss:w0rd"),
    ],
)
def test_redacted_dsn_never_shows_the_password(url: str, password: str) -> None:
    s = Settings(database_url=url)
    shown = s.redacted_dsn()
    assert password not in shown
    assert "***" in shown
    assert "alice" in shown  # still useful: user, host and database stay visible
    assert "@h" in shown or "@db.example" in shown


def test_redact_masks_the_password_wherever_it_appears() -> None:
    s = Settings(database_url=URL)
    text = f"could not connect with {URL}; password was s3cr3t-Pw"
    redacted = redact(text, [s.database_url])
    assert "s3cr3t-Pw" not in redacted
    assert "alice" in redacted
    assert redacted.count("***") == 2


def test_redact_without_a_url_still_masks_urls() -> None:
    assert redact("see postgresql://u:hunter2@h/db", [None]) == "see postgresql://u:***@h/db"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:secret@127.0.0.1:1/x", "postgresql://u:***@127.0.0.1:1/x"),
        ("a postgresql+psycopg://u:pw@h/db b", "a postgresql+psycopg://u:***@h/db b"),
        ("x=postgres://:pw@h/db", "x=postgres://:***@h/db"),
        ("two: postgresql://a:p1@h/d and postgresql://b:p2@h/d", None),
        ("no password: postgresql://u@h/db", "no password: postgresql://u@h/db"),
        ("plain text, no url", "plain text, no url"),
    ],
)
def test_redact_urls(text: str, expected: str | None) -> None:
    redacted = redact_urls(text)
    if expected is None:
        assert "p1" not in redacted and "p2" not in redacted
        assert redacted.count("***") == 2
    else:
        assert redacted == expected


def test_the_driver_gets_the_server_and_credentials_as_libpq_keywords() -> None:
    assert libpq_url("postgresql+psycopg://alice:pw@h:5/db") == (
        "user=alice password=pw dbname=db host=h port=5"
    )


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e300"])
def test_non_finite_or_absurd_numbers_are_input_errors(raw: str) -> None:
    for name in ("PROMETHEUS_PHASE_TIMEOUT", "PROMETHEUS_RETRY_BASE_SECONDS"):
        with pytest.raises(InputError, match=name):
            Settings.from_env({name: raw})


def test_a_postgres_scheme_url_is_accepted_as_postgresql() -> None:
    s = Settings(database_url="postgres://alice:pw@h:5432/db")
    assert s.redacted_dsn() == "postgresql://alice:***@h:5432/db"


def test_a_password_given_as_a_query_parameter_is_masked_too() -> None:
    text = "connect postgresql://alice@h/db?password=hunter2&sslmode=require"
    assert "hunter2" not in redact_urls(text)
    assert "sslmode=require" in redact_urls(text)


def test_known_database_urls_come_from_the_environment_and_both_flag_forms() -> None:
    argv = [
        "--database-url",
        "postgresql://a:one@h/x",
        "runs",
        "--database-url=postgresql://b:two@h/y",
    ]
    urls = known_database_urls(argv)
    assert "postgresql://a:one@h/x" in urls and "postgresql://b:two@h/y" in urls
    assert redact("one two three", urls) == "*** *** three"


def test_the_web_login_comes_from_the_environment_and_the_password_stays_out_of_repr() -> None:
    s = Settings.from_env({"PROMETHEUS_WEB_USER": "alice", "PROMETHEUS_WEB_PASSWORD": "pw-42"})
    assert (s.web_user, s.web_password, s.web_actions_enabled) == ("alice", "pw-42", True)
    assert "pw-42" not in repr(s)
    assert Settings.from_env({}).web_actions_enabled is False


@pytest.mark.parametrize(
    "environ",
    [
        {"PROMETHEUS_WEB_USER": "alice"},
        {"PROMETHEUS_WEB_PASSWORD": "pw"},
        {"PROMETHEUS_WEB_USER": "al:ice", "PROMETHEUS_WEB_PASSWORD": "pw"},
    ],
)
def test_a_half_or_malformed_web_login_is_an_input_error(environ: dict[str, str]) -> None:
    with pytest.raises(InputError, match="PROMETHEUS_WEB_USER"):
        Settings.from_env(environ)
