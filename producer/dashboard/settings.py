"""The dashboard's own settings (``SLUICE_DASHBOARD_*``), read by `sluice dashboard` and, for
how many jobs a listing reads, `sluice jobs`; a worker does not accept them."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from producer.client.listing import MAX_LISTED
from producer.contract.settings import ClientSettings, CommaList


class DashboardSettings(ClientSettings):
    """What `sluice dashboard` needs to know: the shared settings and its own."""

    dashboard_host: str = "127.0.0.1"
    """Address `sluice dashboard` listens on (``0.0.0.0``: every interface)."""
    dashboard_port: int = Field(default=8400, ge=0, le=65535)
    """Port `sluice dashboard` listens on (0: a free one, printed at start)."""
    dashboard_token: SecretStr | None = None
    """Bearer token the dashboard's actions and the HTTP API's writes require (at least 16
    characters); unset: actions and writes are off."""
    dashboard_read_only: bool = False
    """Serve the dashboard and HTTP API read-only: no enqueue, cancel, retry or delete."""
    dashboard_require_login: bool = False
    """Require the token to view pages and read the HTTP API too, not only to act."""
    dashboard_max_listed: int = Field(default=MAX_LISTED, ge=1)
    """Most jobs the dashboard's job list and state counts read (found by SCAN), and `sluice
    jobs` too."""
    dashboard_allowed_hosts: CommaList = Field(default_factory=list)
    """Host names the dashboard answers to besides IP addresses, ``localhost`` and the address
    it listens on (comma-separated; ``*``: any, only behind a proxy that checks Host)."""
    dashboard_behind_tls: bool = False
    """The dashboard is reached over HTTPS (e.g. through a TLS-terminating proxy): its login
    cookie is marked ``Secure``."""

    @field_validator("dashboard_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value
