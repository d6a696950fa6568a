"""Database URLs in every libpq form: parsed by libpq, checked, shown only masked."""

from __future__ import annotations

import pytest

from prometheus.config import LISTEN_URL_NAME, Settings, known_database_urls, redact
from prometheus.conninfo import ConnInfo, password_fragments
from prometheus.errors import InputError

NAME = "the database URL (PROMETHEUS_DATABASE_URL or --database-url)"

#: URL -> what libpq must see (host and port lists in libpq's comma form).
FORMS = {
    "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write": {
        "user": "u",
        "dbname": "db",
        "host": "h1,h2",
        "port": "5432,5433",
        "target_session_attrs": "read-write",
    },
    "postgres://u:pw@h/db": {"user": "u", "password": "pw", "dbname": "db", "host": "h"},
    "postgresql+psycopg://u:pw@h:5/db": {
        "user": "u",
        "password": "pw",
        "dbname": "db",
        "host": "h",
        "port": "5",
    },
    # SQLAlchemy's multi-host form: repeated hosts, each with its port or none.
    "postgresql://u:pw@/db?host=a:5432&host=b:5433": {
        "user": "u",
        "password": "pw",
        "dbname": "db",
        "host": "a,b",
        "port": "5432,5433",
    },
    "postgresql://u@/db?host=a&host=b": {"user": "u", "dbname": "db", "host": "a,b"},
    "postgresql://u@/db?host=a,b&port=1,2": {
        "user": "u",
        "dbname": "db",
        "host": "a,b",
        "port": "1,2",
    },
    "host=h1,h2 port=5432 dbname=db target_session_attrs=primary": {
        "host": "h1,h2",
        "port": "5432",
        "dbname": "db",
        "target_session_attrs": "primary",
    },
    "postgresql://u@%2Frun%2Fpostgresql:5433/db": {
        "user": "u",
        "dbname": "db",
        "host": "/run/postgresql",
        "port": "5433",
    },
    "postgresql:///db?host=/run/postgresql": {"dbname": "db", "host": "/run/postgresql"},
    "host=/tmp dbname=x password='a b'": {"host": "/tmp", "dbname": "x", "password": "a b"},
    "postgresql://[::1]:5432/db": {"host": "::1", "port": "5432", "dbname": "db"},
    "postgresql://u:p%40ss%3Aw0rd@h/d%20b?application_name=a%20b": {
        "user": "u",
        "password": "p@ss:w0rd",
        "host": "h",
        "dbname": "d b",
        "application_name": "a b",
    },
}


@pytest.mark.parametrize("raw", FORMS)
def test_every_libpq_form_is_read_as_libpq_reads_it(raw: str) -> None:
    assert dict(ConnInfo.parse(raw, name=NAME).params) == FORMS[raw]


@pytest.mark.parametrize("raw", FORMS)
def test_a_url_written_back_reads_the_same_and_keeps_its_form(raw: str) -> None:
    info = ConnInfo.parse(raw, name=NAME)
    again = ConnInfo.parse(info.render(), name=NAME)
    assert again.params == info.params
    assert info.render().startswith("postgresql://") == ("://" in raw)


@pytest.mark.parametrize("raw", FORMS)
def test_the_shown_form_never_holds_the_password(raw: str) -> None:
    info = ConnInfo.parse(raw, name=NAME)
    shown = info.redacted()
    if info.password:
        assert info.password not in shown
        assert "***" in shown
    assert ConnInfo.parse(shown, name=NAME).hosts == info.hosts  # still says where


def test_another_database_on_the_same_servers() -> None:
    info = ConnInfo.parse("postgresql://u:pw@h1:1,h2:2/db?sslmode=require", name=NAME)
    other = info.with_params(dbname="scratch").render()
    assert other == "postgresql://u:pw@h1:1,h2:2/scratch?sslmode=require"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("postgresql://alice:hunter2@h:abc/db", "port 'abc' is not a number 1-65535"),
        ("postgresql://alice:hunter2@h:70000/db", "port '70000'"),
        ("host=a,b,c port=1,2 password=hunter2", "2 ports for 3 host(s)"),
        ("postgresql://u:hunter2@h/db?target_session_attrs=rw", "target_session_attrs='rw'"),
        ("postgresql://u:hunter2@h/db?sslmode=on", "sslmode='on'"),
        ("postgresql://u:hunter2@h/db?connect_timeout=ten", "connect_timeout='ten'"),
        ("postgresql://u:hunter2@h/db?foo=1", 'invalid URI query parameter: "foo"'),
        ("postgresql://u:hunter2@h/my db", "unexpected spaces"),
        # libpq stops the value at the space and quotes the next word, which may be the
        # rest of the password: every word after password= that is no keyword is masked.
        ("host=h password=hunter2 nonsense", 'missing "=" after "***"'),
        ("mysql://u:hunter2@h/db", "must name PostgreSQL"),
        ("postgresql+asyncpg://u:hunter2@h/db", "must name PostgreSQL"),
        # libpq quotes the token it could not decode: here, the password itself.
        ("postgresql://u:hunter2%zz@h/db", "invalid percent-encoded token"),
    ],
)
def test_a_bad_url_is_one_line_naming_the_wrong_part_without_the_password(
    raw: str, says: str
) -> None:
    with pytest.raises(InputError) as caught:
        ConnInfo.parse(raw, name=NAME)
    message = str(caught.value)
    assert says in message
    assert message.startswith(NAME)
    assert "hunter2" not in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


def test_the_listen_url_is_checked_and_named_as_itself() -> None:
    with pytest.raises(InputError) as caught:
        Settings.from_env({"PROMETHEUS_LISTEN_URL": "postgresql://u@h:x/db"})
    assert str(caught.value).startswith(f"{LISTEN_URL_NAME} is not valid: port 'x'")
    s = Settings.from_env(
        {
            "PROMETHEUS_DATABASE_URL": "postgresql://u:one@pooler:6432/db",
            "PROMETHEUS_LISTEN_URL": "postgresql://u:two@primary:5432/db",
        }
    )
    assert s.listen_dsn == "postgresql://u:two@primary:5432/db"
    assert s.redacted_listen_dsn() == "postgresql://u:***@primary:5432/db"


def test_without_a_listen_url_the_reactor_listens_on_the_database_url() -> None:
    s = Settings.from_env({"PROMETHEUS_DATABASE_URL": "postgresql://u@h1,h2/db"})
    assert s.listen_dsn == s.database_url
    assert s.redacted_listen_dsn() == s.redacted_dsn() == "postgresql://u@h1,h2/db"


@pytest.mark.parametrize(
    ("raw", "password"),
    [
        ("postgresql://u:hunter2@h/db", "hunter2"),
        ("host=h password='hunter 2'", "hunter 2"),
        ("postgresql://u:hunter2@h:bad/db", "hunter2"),  # valid for libpq's parser
        ("postgresql://u:hunter2%zz@h/db", "hunter2%zz"),  # too broken to parse
        ("host=h password=hunter2 nonsense", "hunter2"),
    ],
)
def test_the_password_is_found_to_be_masked_even_in_a_broken_url(raw: str, password: str) -> None:
    assert password in password_fragments(raw)


def test_a_url_without_a_password_has_nothing_to_mask() -> None:
    assert password_fragments("postgresql://u@h/db") == []
    assert password_fragments("host=h password=") == []


#: Passwords an operator may write with spaces, quotes and backslashes, each in a URL that
#: libpq refuses (so its error quotes what it could not read) or accepts.
SPACED = [
    ("host=h password=pw1 pw2", ["pw1", "pw2"]),
    ("host=h password=pw1 pw2 dbname=db", ["pw1", "pw2"]),
    ("host=h password=pw1 pw2 pw3", ["pw1", "pw2", "pw3"]),
    ("host=h password=pw1\\ pw2 pw3", ["pw1", "pw2", "pw3"]),
    ("host=h password='pw1 pw2", ["pw1", "pw2"]),  # unterminated
    ("host=h password='pw1\\'s pw2' pw3", ["pw1", "pw2", "pw3"]),
    ("password = pw1 pw2", ["pw1", "pw2"]),
    ("host=h password= pw1 pw2", ["pw1", "pw2"]),
    ("postgresql://u:pw1 pw2@h/db", ["pw1", "pw2"]),
    ("postgresql://u@h/db?password=pw1 pw2&sslmode=require", ["pw1", "pw2"]),
]


@pytest.mark.parametrize(("raw", "words"), SPACED, ids=[raw for raw, _ in SPACED])
def test_no_word_of_a_password_reaches_an_error_message(raw: str, words: list[str]) -> None:
    try:
        ConnInfo.parse(raw, name=NAME)
        message = ""
    except InputError as exc:
        message = str(exc)
    for text in (message, redact(f"failed: {raw}", [raw]), redact(f"failed: {raw}", [])):
        for word in words:
            assert word not in text.replace(NAME, ""), (word, text)


def test_masking_keeps_what_is_not_the_password() -> None:
    masked = redact("conn host=h password=se cret dbname=db user=alice", [])
    assert masked == "conn host=h password=*** dbname=db user=alice"
    assert redact("conn host=h password=", []) == "conn host=h password="
    assert redact("at the end: password=se cret", []) == "at the end: password=***"
    # An error quoting a word of the password without its keyword: the word alone goes.
    raw = "host=h password=se cret"
    assert redact('missing "=" after "cret" in connection info string', [raw]) == (
        'missing "=" after "***" in connection info string'
    )


def test_the_listen_urls_password_is_masked_in_messages_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROMETHEUS_LISTEN_URL", "host=h password=sesame")
    assert redact("failed: sesame", known_database_urls([])) == "failed: ***"


def test_a_quoted_keyword_password_is_masked_whole() -> None:
    assert redact("conn host=h password='open sesame' dbname=x", []) == (
        "conn host=h password=*** dbname=x"
    )
