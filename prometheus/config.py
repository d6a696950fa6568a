"""Configuration in one place: environment and flags become one frozen Settings.

Nothing else in the package reads ``os.environ``. ``Settings.from_env`` is pure (it
takes the mapping), so tests build settings without monkeypatching.
"""

from __future__ import annotations

import getpass
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from prometheus.calendar import DEFAULT_REGION_EXCHANGES
from prometheus.conninfo import ConnInfo, mask_passwords, without_passwords
from prometheus.errors import InputError

MAX_ATTEMPTS_DEFAULT = 3
RETRY_BASE_SECONDS_DEFAULT = 10.0
RETRY_CAP = timedelta(minutes=15)
PHASE_TIMEOUT_SECONDS_DEFAULT = 3600.0
HOME_DEFAULT = Path("~/.local/share/prometheus")
SWEEP_INTERVAL_SECONDS_DEFAULT = 60.0
CONCURRENCY_DEFAULT = 4
SHUTDOWN_TIMEOUT_SECONDS_DEFAULT = 30.0
HEARTBEAT_INTERVAL_SECONDS_DEFAULT = 10.0
#: While the listener cannot hear (a transaction pooler, a standby, a lost link), the
#: reactor looks for due runs this often instead of waiting for the sweep.
POLL_INTERVAL_SECONDS_DEFAULT = 1.0
#: How often the listener proves again that a notification reaches it.
LISTENER_CHECK_INTERVAL_SECONDS_DEFAULT = 30.0
#: A reactor worker's batch under a backlog (README, "Batches"): it takes no further run
#: once it holds this many, or once it has run this long. 1 run: a transaction per step.
BATCH_MAX_RUNS_DEFAULT = 16
BATCH_MAX_MS_DEFAULT = 20.0
#: PostgreSQL keeps 64 subtransaction ids per backend in shared memory; a batch of more
#: runs whose tasks write would overflow it, and slow every other session's snapshots.
BATCH_MAX_RUNS_LIMIT = 64
#: /healthz and /metrics listen on loopback unless told otherwise: they are not for the world.
METRICS_HOST_DEFAULT = "127.0.0.1"

DATABASE_URL_NAME = "the database URL (PROMETHEUS_DATABASE_URL or --database-url)"
LISTEN_URL_NAME = "the listen URL (PROMETHEUS_LISTEN_URL)"

N = TypeVar("N", int, float)
MAX_NUMBER = 1e8  # seconds: three years; anything larger is a typo, and overflows timedelta


@dataclass(frozen=True)
class Settings:
    """Everything the engine, the reactor and the CLI are configured with."""

    database_url: str | None = field(default=None, repr=False)  # holds the password
    # Where the reactor LISTENs, if not on database_url (which may be a transaction pooler).
    listen_url: str | None = field(default=None, repr=False)
    home: Path = field(default_factory=HOME_DEFAULT.expanduser)
    max_attempts: int = MAX_ATTEMPTS_DEFAULT
    retry_base: timedelta = timedelta(seconds=RETRY_BASE_SECONDS_DEFAULT)
    phase_timeout: timedelta = timedelta(seconds=PHASE_TIMEOUT_SECONDS_DEFAULT)
    phase_tasks: str | None = None
    region_exchanges: Mapping[str, str] = field(default_factory=lambda: DEFAULT_REGION_EXCHANGES)
    os_user: str = "unknown"
    # The reactor's (flags of `prometheus reactor` override these).
    sweep_interval: timedelta = timedelta(seconds=SWEEP_INTERVAL_SECONDS_DEFAULT)
    concurrency: int = CONCURRENCY_DEFAULT
    metrics_port: int | None = None
    shutdown_timeout: timedelta = timedelta(seconds=SHUTDOWN_TIMEOUT_SECONDS_DEFAULT)
    heartbeat_interval: timedelta = timedelta(seconds=HEARTBEAT_INTERVAL_SECONDS_DEFAULT)
    poll_interval: timedelta = timedelta(seconds=POLL_INTERVAL_SECONDS_DEFAULT)
    listener_check_interval: timedelta = timedelta(seconds=LISTENER_CHECK_INTERVAL_SECONDS_DEFAULT)
    batch_max_runs: int = BATCH_MAX_RUNS_DEFAULT
    batch_max_time: timedelta = timedelta(milliseconds=BATCH_MAX_MS_DEFAULT)
    # `prometheus web`: actions (retry, cancel) exist only with both, behind basic auth.
    web_user: str | None = None
    web_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InputError(f"PROMETHEUS_MAX_ATTEMPTS must be >= 1, got {self.max_attempts}")
        if self.retry_base.total_seconds() < 0:
            raise InputError("PROMETHEUS_RETRY_BASE_SECONDS must be >= 0")
        if self.phase_timeout.total_seconds() <= 0:
            raise InputError("PROMETHEUS_PHASE_TIMEOUT must be > 0")
        if self.sweep_interval.total_seconds() <= 0:
            raise InputError("the sweep interval must be > 0")
        if self.poll_interval.total_seconds() <= 0:
            raise InputError("PROMETHEUS_POLL_INTERVAL must be > 0")
        if not 1 <= self.concurrency <= 256:
            raise InputError(f"concurrency must be between 1 and 256, got {self.concurrency}")
        if not 1 <= self.batch_max_runs <= BATCH_MAX_RUNS_LIMIT:
            raise InputError(
                f"PROMETHEUS_BATCH_MAX_RUNS must be between 1 and {BATCH_MAX_RUNS_LIMIT}, "
                f"got {self.batch_max_runs}"
            )
        if self.batch_max_time.total_seconds() < 0:
            raise InputError("PROMETHEUS_BATCH_MAX_MS must be >= 0")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise InputError(f"invalid metrics port {self.metrics_port}")
        if self.database_url is not None:
            ConnInfo.parse(self.database_url, name=DATABASE_URL_NAME)
        if self.listen_url is not None:
            ConnInfo.parse(self.listen_url, name=LISTEN_URL_NAME)
        if (self.web_user is None) != (self.web_password is None):
            raise InputError(
                "set both PROMETHEUS_WEB_USER and PROMETHEUS_WEB_PASSWORD, or neither "
                "(without them `prometheus web` is read-only)"
            )
        if self.web_user is not None and (":" in self.web_user or not self.web_user.strip()):
            raise InputError("PROMETHEUS_WEB_USER must be a non-empty name without ':'")

    @property
    def web_actions_enabled(self) -> bool:
        """Whether `prometheus web` may offer actions: only with a login to ask for."""
        return self.web_user is not None and self.web_password is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Read ``PROMETHEUS_*`` variables; keyword overrides (CLI flags) win when not None."""
        values: dict[str, Any] = {"os_user": _os_user(environ)}
        if url := environ.get("PROMETHEUS_DATABASE_URL"):
            values["database_url"] = url
        if url := environ.get("PROMETHEUS_LISTEN_URL"):
            values["listen_url"] = url
        if home := environ.get("PROMETHEUS_HOME"):
            values["home"] = Path(home).expanduser()
        if raw := environ.get("PROMETHEUS_MAX_ATTEMPTS"):
            values["max_attempts"] = _number(raw, "PROMETHEUS_MAX_ATTEMPTS", int)
        if raw := environ.get("PROMETHEUS_RETRY_BASE_SECONDS"):
            seconds = _number(raw, "PROMETHEUS_RETRY_BASE_SECONDS", float)
            values["retry_base"] = timedelta(seconds=seconds)
        if raw := environ.get("PROMETHEUS_PHASE_TIMEOUT"):
            seconds = _number(raw, "PROMETHEUS_PHASE_TIMEOUT", float)
            values["phase_timeout"] = timedelta(seconds=seconds)
        if module := environ.get("PROMETHEUS_PHASE_TASKS"):
            values["phase_tasks"] = module
        if raw := environ.get("PROMETHEUS_SWEEP_INTERVAL"):
            seconds = _number(raw, "PROMETHEUS_SWEEP_INTERVAL", float)
            values["sweep_interval"] = timedelta(seconds=seconds)
        if raw := environ.get("PROMETHEUS_POLL_INTERVAL"):
            seconds = _number(raw, "PROMETHEUS_POLL_INTERVAL", float)
            values["poll_interval"] = timedelta(seconds=seconds)
        if raw := environ.get("PROMETHEUS_CONCURRENCY"):
            values["concurrency"] = _number(raw, "PROMETHEUS_CONCURRENCY", int)
        if raw := environ.get("PROMETHEUS_BATCH_MAX_RUNS"):
            values["batch_max_runs"] = _number(raw, "PROMETHEUS_BATCH_MAX_RUNS", int)
        if raw := environ.get("PROMETHEUS_BATCH_MAX_MS"):
            milliseconds = _number(raw, "PROMETHEUS_BATCH_MAX_MS", float)
            values["batch_max_time"] = timedelta(milliseconds=milliseconds)
        if raw := environ.get("PROMETHEUS_REGION_EXCHANGES"):
            values["region_exchanges"] = _region_map(raw)
        if user := environ.get("PROMETHEUS_WEB_USER"):
            values["web_user"] = user
        if password := environ.get("PROMETHEUS_WEB_PASSWORD"):
            values["web_password"] = password
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def from_process_env(cls, **overrides: Any) -> Settings:
        """Settings of this process: its environment, then the flags."""
        return cls.from_env(os.environ, **overrides)

    def from_overrides(self, **overrides: Any) -> Settings:
        """These settings with the given flags applied (None means "not given")."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def with_database_url(self, url: str) -> Settings:
        return replace(self, database_url=url)

    def redacted_dsn(self) -> str:
        """The database URL with its password masked: the only form that may be shown."""
        if self.database_url is None:
            return "(embedded)"
        return ConnInfo.parse(self.database_url, name=DATABASE_URL_NAME).redacted()

    @property
    def listen_dsn(self) -> str | None:
        """Where the reactor LISTENs: PROMETHEUS_LISTEN_URL, else the database URL."""
        return self.listen_url or self.database_url

    def redacted_listen_dsn(self) -> str:
        if self.listen_url is None:
            return self.redacted_dsn()
        return ConnInfo.parse(self.listen_url, name=LISTEN_URL_NAME).redacted()

    @property
    def embedded_home(self) -> Path:
        return self.home / "pgdata"


def subprocess_environment(**overrides: str) -> dict[str, str]:
    """An environment for a child process: this one's, minus every ``PROMETHEUS_*``
    setting (so nothing leaks in by accident), plus exactly the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")}
    env.update(overrides)
    return env


def redact_urls(text: str) -> str:
    """Mask the password of any URL (or ``password=`` parameter) in text: the last guard
    before stderr or a log line."""
    return mask_passwords(text)


def redact(text: str, urls: Iterable[str | None]) -> str:
    """``redact_urls``, and also the passwords of ``urls`` wherever they appear in text."""
    return without_passwords(text, [url for url in urls if url])


def known_database_urls(argv: Sequence[str]) -> list[str]:
    """The database URLs this process was given (environment and ``--database-url``),
    so an error message can be scrubbed even before Settings exist."""
    names = ("PROMETHEUS_DATABASE_URL", "PROMETHEUS_LISTEN_URL")
    urls = [os.environ.get(name, "") for name in names] + _flagged_urls(argv)
    return [u for u in urls if u]


def shown_database_url(argv: Sequence[str]) -> str:
    """The database URL this command uses (the last ``--database-url``, else the
    environment's), masked: to say which server an error came from."""
    chosen = (_flagged_urls(argv) or [os.environ.get("PROMETHEUS_DATABASE_URL", "")])[-1]
    if not chosen:
        return "(embedded)"
    try:
        return ConnInfo.parse(chosen, name=DATABASE_URL_NAME).redacted()
    except InputError:
        return "(the configured URL)"


def _flagged_urls(argv: Sequence[str]) -> list[str]:
    urls = []
    for index, arg in enumerate(argv):
        if arg == "--database-url" and index + 1 < len(argv):
            urls.append(argv[index + 1])
        elif arg.startswith("--database-url="):
            urls.append(arg.split("=", 1)[1])
    return urls


def libpq_url(database_url: str) -> str:
    """What psycopg.connect and libpq take, for any URL form: libpq's keyword/value
    string (``host=h1,h2 port=5432,5433 dbname=db ...``)."""
    return ConnInfo.parse(database_url, name=DATABASE_URL_NAME).conninfo()


def _number(raw: str, name: str, kind: Callable[[str], N]) -> N:
    try:
        value = kind(raw)
    except ValueError:
        raise InputError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise InputError(f"{name} must be a finite number below {MAX_NUMBER:g}, got {raw!r}")
    return value


def _region_map(raw: str) -> Mapping[str, str]:
    """Parse ``US=XNYS,EU=XETR``: regions map to exchange calendars."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        region, sep, exchange = item.partition("=")
        if not sep or not region.strip() or not exchange.strip():
            raise InputError(f"PROMETHEUS_REGION_EXCHANGES: expected REGION=EXCHANGE, got {item!r}")
        pairs[region.strip().upper()] = exchange.strip().upper()
    return MappingProxyType(pairs)


def _os_user(environ: Mapping[str, str]) -> str:
    """The operator's OS user, recorded as the actor of CLI overrides."""
    try:
        return getpass.getuser()
    except OSError:
        return environ.get("USER", "unknown")
