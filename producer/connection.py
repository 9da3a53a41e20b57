"""Finding and connecting to Redis: the configured URL, or the embedded server's address file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from redis.asyncio import Redis

from producer.errors import ServerUnavailable
from producer.settings import ClientSettings

# Written by the worker that started the embedded server, read by everyone else.
ADDRESS_FILE = "server.json"


def redact_url(url: str) -> str:
    """The URL with any user name and password replaced, safe to log or show."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def embedded_address(data_dir: Path) -> str | None:
    """The URL of a live embedded server recorded in ``data_dir``, or None."""
    path = data_dir / ADDRESS_FILE
    try:
        info = orjson.loads(path.read_bytes())
        os.kill(int(info["pid"]), 0)  # signal 0: is the process alive?
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(info["url"])


def resolve_url(settings: ClientSettings) -> str:
    """The Redis URL to use: SLUICE_REDIS_URL, else the embedded server's."""
    if settings.redis_url:
        return settings.redis_url
    url = embedded_address(settings.data_dir)
    if url is None:
        raise ServerUnavailable(
            "no Redis server: SLUICE_REDIS_URL is unset and no embedded server is running "
            f"in {settings.data_dir.resolve()}; start a worker (`sluice-worker`), which starts "
            "one, or set SLUICE_REDIS_URL"
        )
    return url


def tls_options(settings: ClientSettings) -> dict[str, Any]:
    """redis-py keyword arguments for a rediss:// connection."""
    return {
        "ssl_ca_certs": str(settings.redis_ca_file) if settings.redis_ca_file else None,
        "ssl_certfile": str(settings.redis_cert_file) if settings.redis_cert_file else None,
        "ssl_keyfile": str(settings.redis_key_file) if settings.redis_key_file else None,
        "ssl_check_hostname": settings.redis_check_hostname,
        "ssl_cert_reqs": "required",
    }


def connection_options(settings: ClientSettings, url: str) -> dict[str, Any]:
    """redis-py keyword arguments for this URL: timeouts, and TLS for rediss://."""
    options: dict[str, Any] = {"socket_connect_timeout": 5, "health_check_interval": 30}
    if url.startswith("rediss://"):
        options.update(tls_options(settings))
    return options


def connect(settings: ClientSettings, cls: type[Redis] = Redis, **extra: Any) -> Redis:
    """A redis-py asyncio client for these settings (connects lazily)."""
    url = resolve_url(settings)
    return cls.from_url(url, **{**connection_options(settings, url), **extra})
