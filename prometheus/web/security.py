"""Who may change anything through the console, and how a change proves it was meant.

- Read-only unless ``PROMETHEUS_WEB_USER`` and ``PROMETHEUS_WEB_PASSWORD`` are set, or
  whenever ``--read-only`` is given: then every method but GET and HEAD is refused before
  any handler runs (``ReadOnly``, the outermost layer).
- Actions need HTTP basic auth with those credentials, compared in constant time (both
  parts always compared, so a wrong user costs what a wrong password costs).
- CSRF: a browser sends basic credentials with any request to the site, a forged one
  too; so a POST must also carry the token of the ``prometheus_csrf`` cookie in its form
  (double submit). The cookie is ``SameSite=Strict``: another site's form never has it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prometheus.config import Settings

CSRF_COOKIE = "prometheus_csrf"
CSRF_FIELD = "csrf_token"
REALM = "prometheus web"
SAFE_METHODS = frozenset({"GET", "HEAD"})


class ReadOnly:
    """ASGI middleware: refuse every request that is not GET or HEAD, whatever its path."""

    def __init__(self, app: ASGIApp, *, why: str) -> None:
        self.app = app
        self.why = why

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            response = PlainTextResponse(
                f"refused: {self.why}\n", status_code=403, headers={"Allow": "GET, HEAD"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware: headers that make a slip elsewhere harmless. Scripts and styles
    come from the console itself only (no inline script could run even if a page let
    one through), no framing, no referrer outside, no content sniffing."""

    HEADERS = (
        (
            b"content-security-policy",
            b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *self.HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def authenticated_user(request: Request, settings: Settings) -> str | None:
    """The user of a valid ``Authorization: Basic`` header, else None."""
    if settings.web_user is None or settings.web_password is None:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    user_ok = hmac.compare_digest(user.encode(), settings.web_user.encode())
    password_ok = hmac.compare_digest(password.encode(), settings.web_password.encode())
    return user if sep and user_ok and password_ok else None


def login_required() -> Response:
    return PlainTextResponse(
        "login required: actions need the console's user and password\n",
        status_code=401,
        headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
    )


def csrf_token(request: Request) -> tuple[str, bool]:
    """The browser's CSRF token, and whether it is new (then the response must set it)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) >= 32:
        return token, False
    return secrets.token_urlsafe(32), True


def set_csrf_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        path=request.scope.get("root_path") or "/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def csrf_valid(request: Request, submitted: str | None) -> bool:
    """The form's token is the cookie's (both present, compared in constant time)."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if len(cookie) < 32 or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())
