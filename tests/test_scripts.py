"""`BatchedScript`: one EVALSHA per batch, loaded when Redis lacks it, never lost on the way."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from redis.exceptions import ResponseError

from producer.contract.scripts import CHUNKED
from producer.redis.scripts import BatchedScript
from producer.redis.typed import Redis
from tests.support.servers import Server, free_port, valkey_binary

# adds ARGV[1] to the counter at KEYS[1] and says what it holds now
ADD = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


async def test_runs_the_script_and_loads_it_again_after_a_flush(redis: Redis) -> None:
    key = f"scripts-{uuid.uuid4().hex}"
    script = BatchedScript(redis, ADD, "add")
    errors: list[ResponseError] = []
    await redis.script_flush()  # Redis lacks it: the first call loads it
    assert await script.run([key], [2], errors.append) == 2
    assert await script.run([key], [3], errors.append) == 5
    await redis.script_flush()  # as after a restart: loaded again, the call still runs once
    assert await script.run([key], [4], errors.append) == 9
    assert errors == []
    assert int(await redis.get(key) or b"") == 9


async def test_a_call_redis_refuses_is_reported_and_not_retried(redis: Redis) -> None:
    key = f"scripts-{uuid.uuid4().hex}"
    await redis.rpush(key, "not a counter")  # INCRBY on a list: a script error
    errors: list[ResponseError] = []
    assert await BatchedScript(redis, ADD, "add").run([key], [1], errors.append) is None
    [error] = errors
    assert "WRONGTYPE" in str(error)
    assert await redis.lrange(key, 0, -1) == [b"not a counter"]


async def test_an_unreachable_redis_is_retried_until_the_deadline() -> None:
    gone = Redis(port=free_port(), socket_connect_timeout=0.2)  # nothing listens there
    errors: list[ResponseError] = []
    try:
        script = BatchedScript(gone, ADD, "add")
        assert await script.run(["k"], [1], errors.append, give_up_after_s=0.5) is None
        assert errors == []  # unreachable is not refused: no entry is blamed for it
    finally:
        await gone.aclose()


async def test_a_call_waits_for_redis_to_come_up_and_loads_the_script_there(
    tmp_path: Path,
) -> None:
    """Nothing is listening yet: the call is retried until a server starts on that port, and
    the new server, which lacks the script, gets it loaded before the call runs once."""
    port = free_port()
    client = Redis(port=port, socket_connect_timeout=0.2)
    server = Server(valkey_binary(), tmp_path / "late", port=port)
    errors: list[ResponseError] = []
    try:
        script = BatchedScript(client, ADD, "add")
        call = asyncio.create_task(script.run(["late"], [7], errors.append))
        await asyncio.sleep(0.3)
        assert not call.done()  # still retrying
        await asyncio.to_thread(server.start)
        assert await asyncio.wait_for(call, timeout=10) == 7
        assert int(await client.get("late") or b"") == 7
        assert errors == []
    finally:
        await client.aclose()
        server.stop()


async def test_chunked_runs_one_command_over_more_values_than_unpack_takes(redis: Redis) -> None:
    """CHUNKED sends many members (here 9,000: Lua's unpack stops at 8,000) in calls of a
    thousand, so a claim or a shutdown's endings of up to SLUICE_MAX_JOBS jobs fit."""
    key = f"scripts-{uuid.uuid4().hex}"
    fill = CHUNKED + "local m = {} for i = 1, tonumber(ARGV[1]) do m[i] = i end "
    fill += (
        "chunked('SADD', KEYS[1], m) chunked('SREM', KEYS[1], {1, 2}) chunked('SADD', KEYS[1], {})"
    )
    await redis.eval(fill, 1, key, 9000)
    assert await redis.scard(key) == 8998
    assert not await redis.sismember(key, 1) and await redis.sismember(key, 9000)
