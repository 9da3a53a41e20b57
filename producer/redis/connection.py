"""Finding and connecting to Redis: the sentinels (`producer.redis.sentinel`), the configured URL,
or the embedded server's address file; and `Connected`, what a client holds: the
connection, its scripts, and errors that name the server."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson
from redis.asyncio import ConnectionPool
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from producer.contract.errors import ServerUnavailable
from producer.contract.redaction import redact_url
from producer.contract.settings import ClientSettings, load_settings
from producer.redis.cluster import cluster_client
from producer.redis.failover import is_failover_error
from producer.redis.pool import ReadyPool
from producer.redis.sentinel import sentinel_label, sentinel_pool
from producer.redis.typed import Redis

# Written by the worker that started the embedded server, read by everyone else.
ADDRESS_FILE = "server.json"


def address_stamp(data_dir: Path) -> tuple[int, int, int] | None:
    """What changes when the address file is written anew (a server started): cheap to read,
    so a client can look on every use whether the embedded server has moved."""
    try:
        stat = os.stat(data_dir / ADDRESS_FILE)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


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
        raise ServerUnavailable(no_server_message(settings.data_dir))
    return url


def no_server_message(data_dir: Path) -> str:
    """Why there is no server, and exactly how to have one: the data directory is relative to
    the working directory, and an embedded server runs only while a worker (or more) does."""
    where = data_dir.resolve()
    if any(where.glob("appendonly*")):
        return (
            f"no Redis server: SLUICE_REDIS_URL is unset and the embedded server whose data is "
            f"in {where} is not running (it stops with the last worker); start it, and a "
            f"worker, with `SLUICE_DATA_DIR={where} sluice-worker`, then run this again"
        )
    return (
        f"no Redis server: SLUICE_REDIS_URL is unset and no embedded server has run in {where} "
        f"(SLUICE_DATA_DIR={data_dir}, relative to the working directory {Path.cwd()}); run "
        "this where you started `sluice-worker`, or set SLUICE_DATA_DIR to that directory, or "
        "SLUICE_REDIS_URL to your server"
    )


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


def connection_pool(
    settings: ClientSettings, *, url: str | None = None, **extra: Any
) -> ConnectionPool:
    """The connection pool for these settings (connects lazily): to the primary the sentinels
    name, or to the one server of the URL (``url``, else SLUICE_REDIS_URL, else the embedded
    server's)."""
    if settings.redis_sentinels:
        options = {**connection_options(settings), **extra}
        return sentinel_pool(settings, options, tls_options(settings))
    url = url or resolve_url(settings)
    return ReadyPool.from_url(url, **{**connection_options(settings, url), **extra})


def connect(
    settings: ClientSettings, cls: type[Redis] = Redis, *, url: str | None = None, **extra: Any
) -> Redis:
    """A redis-py asyncio client for these settings, or this URL (connects lazily); on a
    cluster (SLUICE_REDIS_CLUSTER), redis-py's cluster client seeded by the URL."""
    if settings.redis_cluster:
        url = url or resolve_url(settings)
        return cluster_client(url, {**connection_options(settings, url), **extra})
    return cls.from_pool(connection_pool(settings, url=url, **extra))


def server_label(settings: ClientSettings) -> str:
    """The server as logs, errors and the dashboard name it, never with a password."""
    if settings.redis_sentinels:
        return sentinel_label(settings)
    return redact_url(resolve_url(settings))


class Connected:
    """A lazily opened connection for one namespace, with the Lua scripts it has loaded.

    On the embedded server, it follows the server: when the address file is written anew
    with another address (a restart on another port), the next use connects there.
    """

    def __init__(self, settings: ClientSettings | None = None, *, redis: Redis | None = None):
        self.settings = settings or load_settings(ClientSettings)
        self.keys = self.settings.keys
        self._redis = redis
        self._url: str | None = None  # where the connection we opened goes
        self._stamp: tuple[int, int, int] | None = None  # the address file we read it from
        self._scripts: dict[str, AsyncScript] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def redis(self) -> Redis:
        embedded = self.settings.embedded
        if embedded and self._url is not None and self._server_moved():
            self._retire()
        if self._redis is None:
            if embedded:  # follow the address file: a restarted server may have moved
                self._stamp = address_stamp(self.settings.data_dir)
                self._url = resolve_url(self.settings)
            self._redis = connect(self.settings, url=self._url)
        return self._redis

    def _server_moved(self) -> bool:
        """Whether the embedded server's address file now names another address."""
        stamp = address_stamp(self.settings.data_dir)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        url = embedded_address(self.settings.data_dir)
        return url is not None and url != self._url

    def _retire(self) -> None:
        """Drop the connection to a server that moved; closed in the background."""
        old, self._redis, self._url = self._redis, None, None
        self._scripts.clear()
        if old is None:
            return
        try:
            task = asyncio.get_running_loop().create_task(old.aclose())
        except RuntimeError:  # no loop: nothing can be awaited; its sockets are dead anyway
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis, self._url = None, None
            self._scripts.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _script(self, source: str) -> AsyncScript:
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
        # the server the failed call went to, not one resolved since (which may have moved)
        try:
            where = server_label(self.settings) if not self._url else redact_url(self._url)
        except ServerUnavailable as gone:
            return gone
        return ServerUnavailable(f"cannot reach Redis at {where}: {exc}")
