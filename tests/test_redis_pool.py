"""`ReadyPool`: a checkout that does not wait for the loop, and still never hands out a
connection the server closed or one with unread data on it."""

from __future__ import annotations

import asyncio

from producer.redis.pool import ReadyPool, ready
from producer.redis.typed import Redis
from tests.support.servers import Server


async def test_concurrent_commands_each_get_a_working_connection(server: Server) -> None:
    client = Redis.from_pool(ReadyPool.from_url(server.url))
    try:
        await client.set("ready-pool", "1")
        results = await asyncio.gather(*(client.incr("ready-pool") for _ in range(50)))
        assert sorted(results) == list(range(2, 52))
        assert len(client.connection_pool._available_connections) > 1  # they ran side by side
    finally:
        await client.aclose()


async def test_a_connection_the_server_closed_is_replaced(server: Server, redis: Redis) -> None:
    client = Redis.from_pool(ReadyPool.from_url(server.url))
    try:
        await client.client_setname("ready-pool-victim")
        killed = await redis.client_kill_filter(_id=await client.client_id())
        assert killed == 1
        await asyncio.sleep(0.1)  # the close reaches the idle connection in the pool
        [idle] = client.connection_pool._available_connections
        assert not ready(idle)
        assert await client.ping() is True
        assert await client.client_getname() is None  # a new connection, not the killed one
    finally:
        await client.aclose()


async def test_a_connection_with_unread_data_is_replaced(server: Server) -> None:
    """A reply nobody read (the server spoke out of turn) is not taken for the next one's."""
    client = Redis.from_pool(ReadyPool.from_url(server.url))
    try:
        await client.set("ready-pool-x", "first")
        connection = await client.connection_pool.get_connection()
        await connection.send_command("GET", "ready-pool-x")  # its reply is never read
        await client.connection_pool.release(connection)
        await asyncio.sleep(0.1)
        assert not ready(connection)
        await client.set("ready-pool-x", "second")
        assert await client.get("ready-pool-x") == b"second"
    finally:
        await client.aclose()


async def test_a_checkout_of_an_idle_connection_does_not_yield_to_the_loop(
    server: Server,
) -> None:
    """redis-py's own pool waits a turn of the event loop here (a zero-timeout read)."""
    client = Redis.from_pool(ReadyPool.from_url(server.url))
    try:
        await client.ping()  # one idle, connected connection in the pool
        others_ran = False

        async def other() -> None:
            nonlocal others_ran
            others_ran = True

        task = asyncio.create_task(other())
        connection = await client.connection_pool.get_connection()
        assert not others_ran  # nothing else ran meanwhile: no wait
        await client.connection_pool.release(connection)
        await task
        assert others_ran
    finally:
        await client.aclose()
