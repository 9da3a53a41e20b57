"""A redis-py asyncio connection pool whose checkout does not wait for the event loop.

redis-py 5.3's pool checks each connection it hands out by reading from it with a zero
timeout, under one pool-wide asyncio lock: every command waits for a turn of the event
loop before it is sent, and concurrent commands queue behind each other for their
connections (redis/redis-py#3692; fixed upstream in 8.x, which arq's ``redis < 6`` rules
out). In a busy worker a turn of the loop is milliseconds, so this put a serial wait in
front of every claim, store and ending.

`ReadyPool` hands out a connection after checks that do not wait: it is connected, the
server has not closed it, and nothing unread is buffered on it. redis-py disconnects a
connection whose read or write failed or was cancelled, so a connection back in the pool
is clean unless the server spoke out of turn; the health check (``health_check_interval``)
still pings one that has been idle.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection


class ReadyPool(ConnectionPool):  # type: ignore[misc]  # redis-py is read as untyped
    async def get_connection(
        self, command_name: str | None = None, *keys: Any, **options: Any
    ) -> AbstractConnection:
        connection = self.get_available_connection()
        try:
            await connection.connect()  # returns at once when connected
            if not ready(connection):
                await connection.disconnect()
                await connection.connect()
        except BaseException:
            await self.release(connection)
            raise
        return connection


def ready(connection: AbstractConnection) -> bool:
    """Connected, not closed by the server, and with no unread data (looked at, not read)."""
    reader = getattr(connection, "_reader", None)  # the connection's asyncio.StreamReader
    if reader is None or reader.at_eof():
        return False
    return not getattr(reader, "_buffer", b"")
