"""Which ``Host`` the dashboard answers to: the defence against DNS rebinding.

While reads are open, a page on any site could read the dashboard by pointing a DNS name of
its own at the dashboard's address: the browser then treats the dashboard as that site and
sends the name as ``Host``. So a request is answered only if its Host is an IP address (no
DNS involved), ``localhost``, the host the dashboard listens on, or a name in
``SLUICE_DASHBOARD_ALLOWED_HOSTS`` (``*``: any, for a proxy that checks Host itself);
otherwise 421, before anything else is done. The port is not compared: a rebinding page
must use the dashboard's own port anyway.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from producer.dashboard.errors import is_api, json_error
from producer.dashboard.settings import DashboardSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ANY = "*"
# a host name or IPv4 address, or an IPv6 address in brackets; an optional port
HOST_HEADER = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::\d{1,5})?$")


@dataclass(frozen=True)
class HostCheck:
    """The host names a request may name, besides IP addresses."""

    names: frozenset[str]
    any_host: bool = False

    @classmethod
    def from_settings(cls, settings: DashboardSettings, listen_host: str) -> HostCheck:
        listed = {_normal(name) for name in settings.dashboard_allowed_hosts}
        return cls(frozenset({"localhost", _normal(listen_host), *listed}), ANY in listed)

    def allows(self, header: str | None) -> bool:
        """Whether a request with this Host header is answered (none given: HTTP/1.0)."""
        if header is None or self.any_host:
            return True
        found = HOST_HEADER.match(header)
        if found is None:
            return False
        if found["v6"] is not None:
            return _is_ip(found["v6"])
        return _is_ip(found["name"]) or _normal(found["name"]) in self.names


def _normal(name: str) -> str:
    return name.strip().lower().removesuffix(".")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def host_middleware(check: HostCheck) -> Middleware:
    """Refuse (421) a request whose Host the dashboard does not answer to."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Host")
        if check.allows(header):
            return await handler(request)
        message = (
            f"this dashboard does not answer to the host {header!r}; "
            "name it in SLUICE_DASHBOARD_ALLOWED_HOSTS if it should"
        )
        if is_api(request):
            return json_error(421, "misdirected_request", message)
        return web.Response(status=421, text=message)

    return middleware
