"""Who may do what: the bearer token, the login cookie, read-only mode.

- Reads (every GET: pages, their live fragments, ``GET /api/...``) are open, unless
  ``SLUICE_DASHBOARD_REQUIRE_LOGIN`` is set; then they need the token too.
- Every other request (enqueue, cancel, retry, delete) is an action. It is refused with 403
  in read-only mode and when no token is set, and with 401 without the token: either
  ``Authorization: Bearer <token>``, or the login cookie that ``/login`` sets together with
  the header ``X-Requested-With: sluice`` (a cross-site form cannot send that header, and the
  cookie is ``SameSite=Strict`` besides).
- The cookie holds an HMAC of the token, never the token; changing the token logs everyone
  out. Tokens are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Middleware

from producer.dashboard.errors import is_api, json_error
from producer.settings import ClientSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
COOKIE = "sluice_session"
COOKIE_MAX_AGE_S = 12 * 3600
ACTION_HEADER = "X-Requested-With"
ACTION_HEADER_VALUE = "sluice"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
OPEN_PATHS = {"/login", "/logout"}  # reachable without the token, to get or drop it


@dataclass(frozen=True)
class Access:
    """The dashboard's access rules, from settings."""

    token: str | None
    read_only: bool
    require_login: bool

    @classmethod
    def from_settings(cls, settings: ClientSettings) -> Access:
        secret = settings.dashboard_token
        return cls(
            token=secret.get_secret_value() if secret is not None else None,
            read_only=settings.dashboard_read_only,
            require_login=settings.dashboard_require_login,
        )

    @property
    def actions_enabled(self) -> bool:
        return self.token is not None and not self.read_only

    def session_value(self) -> str:
        assert self.token is not None
        return hmac.new(
            self.token.encode(), b"sluice-dashboard-session", hashlib.sha256
        ).hexdigest()

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def bearer_ok(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(given.strip())

    def cookie_ok(self, request: web.Request) -> bool:
        given = request.cookies.get(COOKIE, "")
        return self.token is not None and hmac.compare_digest(given, self.session_value())

    def logged_in(self, request: web.Request) -> bool:
        return self.bearer_ok(request) or self.cookie_ok(request)

    def can_read(self, request: web.Request) -> bool:
        return not self.require_login or self.logged_in(request)

    def refuse_action(self, request: web.Request) -> tuple[int, str, str] | None:
        """Why this action is refused (status, code, message), or None if it may go ahead."""
        if self.read_only:
            return 403, "read_only", "the dashboard is read-only (SLUICE_DASHBOARD_READ_ONLY)"
        if self.token is None:
            return 403, "actions_disabled", "actions are off: set SLUICE_DASHBOARD_TOKEN"
        if self.bearer_ok(request):
            return None
        if self.cookie_ok(request) and request.headers.get(ACTION_HEADER) == ACTION_HEADER_VALUE:
            return None
        return 401, "unauthorized", "this needs the token: Authorization: Bearer <token>"


def auth_middleware(access: Access) -> Middleware:
    """Refuse reads without a login (when required) and every action without the token."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.path.startswith("/static/"):
            return await handler(request)
        if request.method in SAFE_METHODS:
            if access.can_read(request):
                return await handler(request)
            if is_api(request):
                return _unauthorized("this server needs the token to read: Bearer <token>")
            raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}")
        refusal = access.refuse_action(request)
        if refusal is None:
            return await handler(request)
        status, code, message = refusal
        return _unauthorized(message) if status == 401 else json_error(status, code, message)

    return middleware


def _unauthorized(message: str) -> web.Response:
    return json_error(401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="sluice"'})


def set_session(response: web.StreamResponse, access: Access, secure: bool) -> None:
    response.set_cookie(
        COOKIE, access.session_value(), max_age=COOKIE_MAX_AGE_S, path="/",
        httponly=True, samesite="Strict", secure=secure,
    )  # fmt: skip
