"""redis-py asyncio connection pools whose checkout does not wait for the event loop, and
whose connections leave a server that stopped being the primary.

redis-py 5.3's pool checks each connection it hands out by reading from it with a zero
timeout, under one pool-wide asyncio lock: every command waits for a turn of the event
loop before it is sent, and concurrent commands queue behind each other for their
connections (redis/redis-py#3692; fixed upstream in 8.x, which arq's ``redis < 6`` rules
out). In a busy worker a turn of the loop is milliseconds, so this put a serial wait in
front of every claim, store and ending.

`ReadyPool` (one server's URL) and `producer.redis.sentinel.SentinelReadyPool` (the primary the
sentinels name) hand out a connection after checks that do not wait: it is connected, the
server has not closed it, and nothing unread is buffered on it. redis-py disconnects a
connection whose read or write failed or was cancelled, so a connection back in the pool is
clean unless the server spoke out of turn; the health check (``health_check_interval``)
still pings one that has been idle.

Their connections drop themselves when the server answers as no primary would (READONLY
and the other `producer.redis.failover` codes) and raise `NotPrimary`, a ConnectionError: the
next connection then asks the sentinels again, or resolves the URL's host name again (a
managed endpoint that follows the primary). redis-py's own Sentinel connection does this
for READONLY only.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection
from redis.exceptions import ResponseError

from producer.redis.failover import NotPrimary, is_failover_error


class ReadyCheckout:
    """The checkout of `ReadyPool`, for any redis-py asyncio pool class."""

    async def get_connection(
        self, command_name: str | None = None, *keys: Any, **options: Any
    ) -> AbstractConnection:
        connection: AbstractConnection = self.get_available_connection()  # type: ignore[attr-defined]
        try:
            await connection.connect()  # returns at once when connected
            if not ready(connection) or not self.current(connection):
                await connection.disconnect()
                await connection.connect()
        except BaseException:
            await self.release(connection)  # type: ignore[attr-defined]
            raise
        return connection

    def current(self, connection: AbstractConnection) -> bool:
        """False for a connection to a server the pool has left (see `SentinelReadyPool`)."""
        return True


def ready(connection: AbstractConnection) -> bool:
    """Connected, not closed by the server, and with no unread data (looked at, not read)."""
    reader = getattr(connection, "_reader", None)  # the connection's asyncio.StreamReader
    if reader is None or reader.at_eof():
        return False
    return not getattr(reader, "_buffer", b"")


class _LeavesNonPrimary:
    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except ResponseError as exc:
            if not is_failover_error(exc):
                raise
            await self.disconnect()  # type: ignore[attr-defined]
            raise NotPrimary(f"{self._where()} is not the primary: {exc}") from exc

    def _where(self) -> str:
        path = getattr(self, "path", None)  # a Unix socket's
        return str(path) if path else f"{getattr(self, 'host', '?')}:{getattr(self, 'port', '?')}"


class _Tcp(_LeavesNonPrimary, Connection):
    pass


class _Tls(_LeavesNonPrimary, SSLConnection):
    pass


class _Unix(_LeavesNonPrimary, UnixDomainSocketConnection):
    pass


class SentinelTcp(_LeavesNonPrimary, SentinelManagedConnection):
    """A connection to the primary that the sentinels name (its pool asks them)."""


class SentinelTls(_LeavesNonPrimary, SentinelManagedSSLConnection):
    """The same, over TLS."""


_LEAVING = {Connection: _Tcp, SSLConnection: _Tls, UnixDomainSocketConnection: _Unix}


class ReadyPool(ReadyCheckout, ConnectionPool):
    """A pool of connections to one server (a URL), as `from_url` configures it."""

    def __init__(self, connection_class: type[Any] = Connection, **kwargs: Any) -> None:
        leaving = _LEAVING.get(connection_class, connection_class)
        super().__init__(connection_class=leaving, **kwargs)
