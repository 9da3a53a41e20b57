"""Who may do what: the bearer token, the login cookie, read-only mode.

- Reads (every GET: pages, their live fragments, ``GET /api/...``) are open, unless
  ``SLUICE_DASHBOARD_REQUIRE_LOGIN`` is set; then they need the token too.
- Every other request (enqueue, cancel, retry, delete) is an action. It is refused with 403
  in read-only mode and when no token is set, and with 401 without the token: either
  ``Authorization: Bearer <token>``, or the login cookie that ``/login`` sets together with
  the header ``X-Requested-With: sluice`` (a cross-site form cannot send that header, and the
  cookie is ``SameSite=Strict`` besides).
- The cookie holds a random session id (`sessions`), never the token; logging out forgets
  it. It is ``Secure`` when the request came over TLS or ``SLUICE_DASHBOARD_BEHIND_TLS`` says
  the dashboard is reached over HTTPS. Tokens are compared in constant time, and wrong ones
  are counted per client address (`throttle`): past the limit, 429.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Middleware

from producer.dashboard.errors import is_api, json_error
from producer.dashboard.sessions import Sessions
from producer.dashboard.settings import DashboardSettings
from producer.dashboard.throttle import LoginThrottle

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
COOKIE = "sluice_session"
COOKIE_MAX_AGE_S = 12 * 3600
ACTION_HEADER = "X-Requested-With"
ACTION_HEADER_VALUE = "sluice"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
OPEN_PATHS = {"/login", "/logout"}  # reachable without the token, to get or drop it


@dataclass(frozen=True)
class Access:
    """The dashboard's access rules, from settings, with its sessions and failed logins."""

    token: str | None
    read_only: bool
    require_login: bool
    behind_tls: bool = False
    sessions: Sessions = field(default_factory=lambda: Sessions(COOKIE_MAX_AGE_S))
    throttle: LoginThrottle = field(default_factory=LoginThrottle)

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> Access:
        secret = settings.dashboard_token
        return cls(
            token=secret.get_secret_value() if secret is not None else None,
            read_only=settings.dashboard_read_only,
            require_login=settings.dashboard_require_login,
            behind_tls=settings.dashboard_behind_tls,
        )

    @property
    def actions_enabled(self) -> bool:
        return self.token is not None and not self.read_only

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def bearer_ok(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(given.strip())

    def cookie_ok(self, request: web.Request) -> bool:
        return self.token is not None and self.sessions.valid(request.cookies.get(COOKIE, ""))

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

    def wrong_bearer(self, request: web.Request) -> bool:
        """Whether the request tried a bearer token that is not the token (counted)."""
        if "Authorization" not in request.headers or self.bearer_ok(request):
            return False
        self.throttle.failed(client_address(request))
        return True


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


def throttled(access: Access, request: web.Request) -> web.Response | None:
    """429 while this client has had too many wrong tokens lately, else None."""
    wait_s = access.throttle.retry_after_s(client_address(request))
    if wait_s is None:
        return None
    message = f"too many wrong tokens from this address; try again in {wait_s} s"
    headers = {"Retry-After": str(wait_s)}
    if is_api(request):
        return json_error(429, "too_many_attempts", message, headers)
    return web.Response(status=429, text=message, headers=headers)


def auth_middleware(access: Access) -> Middleware:
    """Refuse reads without a login (when required) and every action without the token."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.path.startswith("/static/"):
            return await handler(request)
        if "Authorization" in request.headers and (refused := throttled(access, request)):
            return refused
        access.wrong_bearer(request)
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


def set_session(response: web.StreamResponse, access: Access, request: web.Request) -> None:
    """Open a session and give its id to the browser in the login cookie."""
    response.set_cookie(
        COOKIE,
        access.sessions.open(),
        max_age=COOKIE_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure or access.behind_tls,
    )


def end_session(response: web.StreamResponse, access: Access, request: web.Request) -> None:
    """Forget the request's session, so its cookie is worthless even if kept, and drop it."""
    access.sessions.close(request.cookies.get(COOKIE, ""))
    response.del_cookie(COOKIE, path="/")
