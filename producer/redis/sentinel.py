"""Finding the primary through Redis Sentinel (SLUICE_REDIS_SENTINELS), and leaving the old
one as soon as the sentinels switch to a new one.

redis-py's Sentinel asks the sentinels, in turn, which server is the primary of
SLUICE_REDIS_MASTER_NAME each time a connection is made; a connection that meets a server
that is no longer the primary drops itself (`producer.redis.pool`). That leaves the
connections already open to a primary that is demoted while it still runs (``SENTINEL
FAILOVER``, or a primary cut off and back): Sentinel reconfigures it as a replica only some
ten seconds after promoting another, and until then it takes every write sent to it, and
loses them when it becomes a replica. So `SentinelReadyPool` also listens for the sentinels'
``+switch-master``: on it, idle connections close, and those in use are replaced when they
come back, so writes go to the new primary within moments of the switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

import structlog
from pydantic import SecretStr
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError

from producer.contract.settings import ClientSettings
from producer.redis.backoff import Backoff
from producer.redis.pool import ReadyCheckout, SentinelTcp, SentinelTls
from producer.redis.typed import Redis

log = structlog.get_logger("sluice.sentinel")

SENTINEL_TIMEOUT_S = 5.0  # a sentinel that does not answer within this is skipped
SWITCH_CHANNEL = "+switch-master"  # "<name> <old ip> <old port> <new ip> <new port>"
STOP_LISTENING_S = 1.0


class SentinelReadyPool(ReadyCheckout, SentinelConnectionPool):
    """A pool of connections to the primary that ``sentinel_manager`` names (``ssl=True``:
    over TLS), following it through failovers."""

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        kwargs["connection_class"] = SentinelTls if kwargs.pop("ssl", False) else SentinelTcp
        # redis-py leaves SentinelConnectionPool.__init__ unannotated (untyped_calls_exclude
        # in pyproject.toml does not reach a call through super())
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]
        self._left: weakref.WeakSet[AbstractConnection] = weakref.WeakSet()
        self._listener: asyncio.Task[None] | None = None

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="sluice-sentinel-switch")
        return await super().get_connection(*args, **kwargs)

    def current(self, connection: AbstractConnection) -> bool:
        """False, once, for a connection that was in use when the primary switched."""
        if connection in self._left:
            self._left.discard(connection)
            return False
        return True

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if not inuse_connections:
            return
        # closing the pool: stop listening, and close the sentinels' connections too
        if self._listener is not None:
            self._listener.cancel()
            # it reads with no timeout, so it stops at once; bounded all the same, since an
            # asyncio.timeout inside redis-py could swallow the cancellation (Python 3.11)
            await asyncio.wait({self._listener}, timeout=STOP_LISTENING_S)
            self._listener = None
        for sentinel in self.sentinel_manager.sentinels:
            await sentinel.connection_pool.disconnect()

    async def _listen(self) -> None:
        """Follow ``+switch-master`` on one sentinel at a time, for as long as the pool lives."""
        backoff = Backoff(None, first_s=0.1, max_s=5.0)
        while True:
            for sentinel in list(self.sentinel_manager.sentinels):
                where = sentinel.connection_pool.connection_kwargs
                with contextlib.suppress(RedisError, OSError):  # gone: try the next one
                    await self._follow(where["host"], where["port"])
            await backoff.pause()

    async def _follow(self, host: str, port: int) -> None:
        """Listen on one sentinel, on a connection of its own without a read timeout: the
        channel is silent between failovers (and a timeout could swallow a cancellation)."""
        options = {**self.sentinel_manager.sentinel_kwargs, "host": host, "port": port}
        options.update(socket_timeout=None, socket_keepalive=True)
        async with Redis(**options) as client, client.pubsub() as pubsub:
            await pubsub.subscribe(SWITCH_CHANNEL)
            async for message in pubsub.listen():
                if message["type"] == "message":
                    await self.switched(message["data"])

    async def switched(self, data: bytes | str) -> None:
        """A ``+switch-master`` message: leave the old primary if it was ours."""
        text = data.decode() if isinstance(data, bytes) else data
        name, *_old, host, port = text.split()
        if name != self.service_name:
            return
        log.warning("primary switched", name=name, primary=f"{host}:{port}")
        self.master_address = (host, int(port))
        self._left.update(self._in_use_connections)
        await super().disconnect(inuse_connections=False)


def sentinel_options(settings: ClientSettings, tls: dict[str, Any]) -> dict[str, Any]:
    """redis-py keyword arguments for the connections to the sentinels themselves."""
    options: dict[str, Any] = {
        "socket_connect_timeout": SENTINEL_TIMEOUT_S,
        "socket_timeout": SENTINEL_TIMEOUT_S,
        "username": settings.redis_sentinel_username,
        "password": _secret(settings.redis_sentinel_password),
    }
    if settings.redis_sentinel_tls:
        options.update(ssl=True, **tls)
    return options


def sentinel_pool(
    settings: ClientSettings, data_options: dict[str, Any], tls: dict[str, Any]
) -> SentinelReadyPool:
    """A pool of connections to the primary the sentinels name; ``data_options`` are the
    connections' own (timeouts, credentials), ``tls`` what TLS needs, for either side."""
    assert settings.redis_master_name is not None  # the settings insist on it with sentinels
    manager = Sentinel(settings.sentinel_addresses, sentinel_kwargs=sentinel_options(settings, tls))
    options = dict(data_options)
    if settings.redis_tls:
        options.update(ssl=True, **tls)
    return SentinelReadyPool(settings.redis_master_name, manager, **options)


def sentinel_label(settings: ClientSettings) -> str:
    """How the server is named in logs and errors: the primary's name and its sentinels."""
    sentinels = ",".join(settings.redis_sentinels)
    return f"primary {settings.redis_master_name!r} via sentinels {sentinels}"


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()
