"""Database URLs as libpq reads them: every form, checked once, shown only masked.

libpq accepts URIs (``postgresql://`` or ``postgres://``, multi-host
``postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write``, sockets as
``?host=/run/postgresql`` or ``%2Frun%2Fpostgresql``) and keyword/value strings
(``host=h1,h2 dbname=db``). So libpq itself parses the URL here (psycopg's
``conninfo_to_dict``, i.e. ``PQconninfoParse``), and the project hands psycopg the
parsed keywords: nothing else re-parses a URL with rules of its own, which is how a
multi-host URL used to crash with ``invalid literal for int()``.

Two forms from SQLAlchemy are accepted as well, because URLs written for it are common:
the ``+psycopg`` driver suffix, and hosts repeated in the query
(``?host=a:5432&host=b:5432``), which libpq alone would read as "the last one".

What libpq only finds out when it connects (a port that is not a number, three hosts
with two ports, an unknown ``target_session_attrs``) is checked here too, so a bad URL
is one line naming the wrong part, not a connection error later. No message ever holds
the password, and the URL is shown only through ``ConnInfo.redacted``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl, quote, urlencode

from prometheus.errors import InputError

MASK = "***"
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*)://")
_POSTGRES_SCHEMES = {"postgresql", "postgres"}
_SQLALCHEMY_DRIVERS = {"psycopg", "psycopg2"}
# Where a password is written, each with its value as group "value": a URI's userinfo;
# a URI's ``password`` query parameter (up to the next ``&``); a keyword/value
# ``password=`` with its value as libpq reads it (single-quoted, or up to a space, with
# backslash escapes), and any words after it that are not ``keyword=`` themselves: in
# ``password=se cret`` libpq stops at the space and then quotes "cret" in its error, but
# the operator meant both words, and both are secret.
_KEY = r"[A-Za-z_][\w.-]*\s*="
_VALUE = r"(?:'(?:[^'\\]|\\.)*'?|(?:[^\s'\\]|\\.)(?:[^\s\\]|\\.)*)"
_PASSWORDS = (
    re.compile(r"(?P<head>://[^@/?#\s]*?:)(?P<value>[^@/?#]*)(?=@)"),
    re.compile(
        rf"(?P<head>[?&]password=)(?P<value>[^&#\s]*(?:\s+(?!{_KEY})[^&#\s]+)*)", re.IGNORECASE
    ),
    re.compile(
        rf"(?P<head>(?<![?&\w])password\s*=\s*)(?P<value>{_VALUE}?(?:\s+(?!{_KEY}){_VALUE})*)",
        re.IGNORECASE | re.DOTALL,
    ),
)

_ENUMS = {
    "target_session_attrs": {
        "any",
        "read-write",
        "read-only",
        "primary",
        "standby",
        "prefer-standby",
    },
    "sslmode": {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"},
    "load_balance_hosts": {"disable", "random"},
}
_INTEGERS = (
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
)


@dataclass(frozen=True)
class ConnInfo:
    """A URL libpq accepts, as the keywords libpq parsed from it.

    ``is_uri`` remembers the form it was given in, so a derived URL (another database on
    the same server) is written back the way the operator wrote it."""

    params: Mapping[str, str] = field(repr=False)  # holds the password
    is_uri: bool = True

    @classmethod
    def parse(cls, raw: str, *, name: str) -> ConnInfo:
        """Check ``raw``; ``name`` says which setting it is, for the error message
        ("the database URL (PROMETHEUS_DATABASE_URL or --database-url)")."""
        import psycopg  # here, not at import: `prometheus --help` never needs libpq
        from psycopg.conninfo import conninfo_to_dict

        scheme = _SCHEME.match(raw)
        text = raw
        if scheme is not None:
            text = _libpq_uri(raw, scheme[1], name)
        try:
            params = conninfo_to_dict(text)
        except psycopg.Error as exc:
            problem = without_passwords(str(exc).strip(), [raw])
            raise InputError(f"{name} is not valid: {problem}") from None
        if not str(params.get("port", "x")).strip(","):
            del params["port"]  # "a,b" gives ports ",": every host on the default port
        info = cls(MappingProxyType({k: str(v) for k, v in params.items()}), scheme is not None)
        info._check(name)
        return info

    @property
    def password(self) -> str | None:
        return self.params.get("password") or None

    @property
    def hosts(self) -> list[str]:
        return _split(self.params.get("host", ""))

    @property
    def ports(self) -> list[str]:
        return _split(self.params.get("port", ""))

    def conninfo(self) -> str:
        """The keyword/value string for ``psycopg.connect`` (password included)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo("", **self.params)

    def with_params(self, **changes: str) -> ConnInfo:
        return ConnInfo(MappingProxyType({**self.params, **changes}), self.is_uri)

    def render(self) -> str:
        """The URL in the form it was given (password included): for a child process,
        never for a message."""
        return self._render(self.params)

    def redacted(self) -> str:
        """The URL with its password masked: the only form that may be shown."""
        shown = dict(self.params)
        if "password" in shown:
            shown["password"] = MASK
        return self._render(shown)

    def _render(self, params: Mapping[str, str]) -> str:
        from psycopg.conninfo import make_conninfo

        return _uri(params) if self.is_uri else make_conninfo("", **params)

    def _check(self, name: str) -> None:
        """What libpq would only say when connecting, said now, naming the part."""
        hosts, ports = self.hosts, self.ports
        for port in ports:
            if port and not (port.isdigit() and 1 <= int(port) <= 65535):
                raise InputError(f"{name} is not valid: port {port!r} is not a number 1-65535")
        if len(ports) > 1 and len(ports) != max(len(hosts), 1):
            raise InputError(
                f"{name} is not valid: {len(ports)} ports for {len(hosts)} host(s)"
                " (give one port, or one per host)"
            )
        for key, allowed in _ENUMS.items():
            value = self.params.get(key)
            if value is not None and value not in allowed:
                raise InputError(
                    f"{name} is not valid: {key}={value!r} is not one of"
                    f" {', '.join(sorted(allowed))}"
                )
        for key in _INTEGERS:
            value = self.params.get(key)
            if value is not None and not value.strip().lstrip("-").isdigit():
                raise InputError(f"{name} is not valid: {key}={value!r} is not a whole number")


def password_fragments(raw: str) -> list[str]:
    """What to mask wherever ``raw``'s password may be echoed, longest first: the
    password as libpq reads it, as it is written (quoted, escaped, percent-encoded), and
    each word of it, also in a URL too broken to parse."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    found: set[str] = set()
    scheme = _SCHEME.match(raw)
    try:
        text = _libpq_uri(raw, scheme[1], "") if scheme else raw
        found.add(str(conninfo_to_dict(text).get("password") or ""))
    except (psycopg.Error, InputError):
        pass  # too broken for libpq: what is written is all there is
    for pattern in _PASSWORDS:
        for match in pattern.finditer(raw):
            found.add(match["value"])
    for value in list(found):
        for word in value.split():
            found.update({word, word.strip("'"), re.sub(r"\\(.)", r"\1", word).strip("'")})
    return sorted((f for f in found if f.strip() and f != MASK), key=len, reverse=True)


def mask_passwords(text: str) -> str:
    """Every password written in ``text`` masked (URIs, ``password=`` keywords and query
    parameters, whatever their quoting): the last guard before a message or a log line."""
    for pattern in _PASSWORDS:
        text = pattern.sub(_masked, text)
    return text


def without_passwords(text: str, urls: Iterable[str]) -> str:
    """``mask_passwords``, and also the passwords of ``urls`` wherever they appear in
    ``text`` (an error may quote a password, or a word of it, without its keyword)."""
    for url in urls:
        for fragment in password_fragments(url):
            # Whole words only: a password "in" must not take the word "in" apart.
            text = re.sub(rf"(?<![^\W_]){re.escape(fragment)}(?![^\W_])", MASK, text)
    return mask_passwords(text)


def _masked(match: re.Match[str]) -> str:
    return match["head"] + (MASK if match["value"] else "")


def _libpq_uri(raw: str, scheme: str, name: str) -> str:
    """``raw`` as a URI libpq reads: SQLAlchemy's driver suffix dropped, its repeated
    ``host`` (and ``port``) query parameters joined into libpq's comma lists."""
    base, _, driver = scheme.partition("+")
    if base.lower() not in _POSTGRES_SCHEMES or (driver and driver not in _SQLALCHEMY_DRIVERS):
        raise InputError(
            f"{name} must name PostgreSQL: postgresql://..., postgres://... or"
            f" 'host=... dbname=...', not {scheme}://"
        )
    uri = "postgresql" + raw.strip()[len(scheme) :]
    head, sep, query = uri.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    if sum(1 for key, _ in pairs if key == "host") < 2:
        return uri
    hosts, ports, rest = [], [], []
    for key, value in pairs:
        if key == "host":
            host, _, port = value.rpartition(":") if _has_port(value) else (value, "", "")
            hosts.append(host)
            ports.append(port)
        elif key != "port":
            rest.append((key, value))
    if any(ports):
        rest.append(("port", ",".join(ports)))
    rest.append(("host", ",".join(hosts)))
    return head + sep + urlencode(rest, safe="/,:", quote_via=quote)


def _has_port(host: str) -> bool:
    """``a:5432`` has a port; ``/run/postgresql`` and ``::1`` do not."""
    return not host.startswith("/") and host.count(":") == 1


def _split(value: str) -> list[str]:
    return value.split(",") if value else []


def _uri(params: Mapping[str, str]) -> str:
    """libpq's URI for ``params``; hosts that are socket directories go in the query,
    where they read as paths."""
    rest = dict(params)
    user = quote(rest.pop("user", ""), safe="")
    password = rest.pop("password", None)
    dbname = rest.pop("dbname", None)
    userinfo = user
    if password is not None:
        userinfo += ":" + (password if password == MASK else quote(password, safe=""))
    netloc = ""
    hosts = _split(rest.get("host", ""))
    ports = _split(rest.get("port", ""))
    if hosts and not any(h.startswith(("/", "@")) for h in hosts):
        rest.pop("host")
        per_host = [""] * len(hosts)  # one port for several hosts stays in the query
        if len(ports) == len(hosts):
            rest.pop("port", None)
            per_host = ports
        netloc = ",".join(
            (f"[{h}]" if ":" in h else quote(h, safe="")) + (f":{p}" if p else "")
            for h, p in zip(hosts, per_host, strict=True)
        )
    at = "@" if userinfo else ""
    path = "/" + quote(dbname, safe="") if dbname is not None else ""
    query = "?" + urlencode(rest, safe="/,:", quote_via=quote) if rest else ""
    return f"postgresql://{userinfo}{at}{netloc}{path}{query}"
