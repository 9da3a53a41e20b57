"""Finding and connecting to Redis: the configured URL, or the embedded server's address
file; and `Connected`, what a client holds: the connection, its scripts, and errors that
name the server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote_plus

import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from producer.errors import ServerUnavailable
from producer.keys import Keys
from producer.redis_pool import ReadyPool
from producer.settings import ClientSettings, load_settings

# Written by the worker that started the embedded server, read by everyone else.
ADDRESS_FILE = "server.json"


# Query parameters redis-py reads as plain connection settings (numbers, flags): shown as
# given. Every other parameter's value is hidden, whatever its name: redis-py hands unknown
# names to the connection as they are (password=, username=, ssl_password=, ...).
SHOWN_URL_PARAMETERS = frozenset(
    {
        "db",
        "protocol",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "retry_on_timeout",
        "retry_on_error",
        "max_connections",
        "health_check_interval",
        "ssl_check_hostname",
        "ssl_cert_reqs",
        "timeout",
    }
)
HIDDEN = "***"


def redact_url(url: str) -> str:
    """The URL with every credential redis-py could read from it hidden: safe to log or show.

    Hidden: the user information (everything up to the last ``@``, so a password whose
    ``/``, ``?`` or ``#`` was not percent-encoded is hidden too, wherever it cut the URL),
    the value of every query parameter but the plain connection settings, and a fragment.
    """
    scheme, sep, rest = url.partition("://") if "://" in url else ("", "", url)
    if "@" in rest:
        rest = f"{HIDDEN}@" + rest.rpartition("@")[2]
    rest, hash_sign, _ = rest.partition("#")
    address, question, query = rest.partition("?")
    shown = scheme + sep + address
    if question:
        shown += "?" + "&".join(_redact_parameter(part) for part in query.split("&"))
    return shown + (f"#{HIDDEN}" if hash_sign else "")


def _redact_parameter(part: str) -> str:
    """One ``name=value`` of a query, its value hidden unless the name is a plain setting."""
    name, equals, _ = part.partition("=")
    if equals and unquote_plus(name) in SHOWN_URL_PARAMETERS:
        return part
    return f"{name}={HIDDEN}" if equals else HIDDEN


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
    return cls.from_pool(ReadyPool.from_url(url, **{**connection_options(settings, url), **extra}))


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
        """Turn a connection failure into ServerUnavailable naming the (redacted) server."""
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: BaseException) -> ServerUnavailable:
        url = redact_url(resolve_url(self.settings))
        return ServerUnavailable(f"cannot reach Redis at {url}: {exc}")
