"""Finding and connecting to Redis: the sentinels (`producer.sentinel`), the configured URL,
or the embedded server's address file; and `Connected`, what a client holds: the
connection, its scripts, and errors that name the server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import orjson
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from producer.errors import ServerUnavailable
from producer.failover import is_failover_error
from producer.keys import Keys
from producer.redis_pool import ReadyPool
from producer.sentinel import sentinel_label, sentinel_pool
from producer.settings import ClientSettings, load_settings

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
    """The Redis URL to use: SLUICE_REDIS_URL, else the embedded server's (not for Sentinel:
    see `connection_pool`)."""
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
    """redis-py keyword arguments for a TLS connection (rediss://, or with Sentinel)."""
    return {
        "ssl_ca_certs": str(settings.redis_ca_file) if settings.redis_ca_file else None,
        "ssl_certfile": str(settings.redis_cert_file) if settings.redis_cert_file else None,
        "ssl_keyfile": str(settings.redis_key_file) if settings.redis_key_file else None,
        "ssl_check_hostname": settings.redis_check_hostname,
        "ssl_cert_reqs": "required",
    }


def connection_options(settings: ClientSettings, url: str | None = None) -> dict[str, Any]:
    """redis-py keyword arguments for connections to the data servers: timeouts, the user and
    password when set apart from the URL, and TLS for rediss://."""
    options: dict[str, Any] = {"socket_connect_timeout": 5, "health_check_interval": 30}
    if settings.redis_username:
        options["username"] = settings.redis_username
    if settings.redis_password:
        options["password"] = settings.redis_password.get_secret_value()
    if url is not None and url.startswith("rediss://"):
        options.update(tls_options(settings))
    return options


def connection_pool(settings: ClientSettings, **extra: Any) -> ConnectionPool:
    """The connection pool for these settings (connects lazily): to the primary the sentinels
    name, or to the one server of the URL (SLUICE_REDIS_URL, else the embedded server's)."""
    if settings.redis_sentinels:
        options = {**connection_options(settings), **extra}
        return sentinel_pool(settings, options, tls_options(settings))
    url = resolve_url(settings)
    return ReadyPool.from_url(url, **{**connection_options(settings, url), **extra})


def connect(settings: ClientSettings, cls: type[Redis] = Redis, **extra: Any) -> Redis:
    """A redis-py asyncio client for these settings (connects lazily)."""
    return cls.from_pool(connection_pool(settings, **extra))


def server_label(settings: ClientSettings) -> str:
    """The server as logs, errors and the dashboard name it, never with a password."""
    if settings.redis_sentinels:
        return sentinel_label(settings)
    return redact_url(resolve_url(settings))


class Connected:
    """A lazily opened connection for one namespace, with the Lua scripts it has loaded."""

    def __init__(self, settings: ClientSettings | None = None, *, redis: Redis | None = None):
        self.settings = settings or load_settings(ClientSettings)
        self.keys = Keys(self.settings.namespace)
        self._redis = redis
        self._scripts: dict[str, Any] = {}

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = connect(self.settings)
        return self._redis

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
            self._scripts.clear()

    def _script(self, source: str) -> Any:
        """The script, run by EVALSHA (sent whole only when Redis does not have it yet)."""
        if source not in self._scripts:
            self._scripts[source] = self.redis.register_script(source)
        return self._scripts[source]

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turn a connection failure, or a server that is not the primary (a failover under
        way), into ServerUnavailable naming the server (without its password)."""
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self._unavailable(exc) from None
        except ResponseError as exc:
            if not is_failover_error(exc):
                raise
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: BaseException) -> ServerUnavailable:
        return ServerUnavailable(f"cannot reach Redis at {server_label(self.settings)}: {exc}")
