"""Waking idle workers: tokens pushed on the wake lists they wait on (BLPOP), each list kept
to WAKE_TOKENS. On a sharded layout no worker waits on a shard's own list (a BLPOP cannot span
hash slots), so a shard's script pushes none there (`Keys.script_wake_tokens`); the one that
ran it pushes here, after, on the fleet's lists (`Keys.fleet_wake_for`), whose names share
one hash tag."""

from __future__ import annotations

from collections.abc import Iterable

from producer.contract.keys import WAKE_TOKENS
from producer.redis.typed import Redis


async def push_wake(redis: Redis, lists: Iterable[str], tokens: int) -> None:
    """Push ``tokens`` tokens (at most WAKE_TOKENS) on each of the wake lists ``lists``."""
    tokens = min(tokens, WAKE_TOKENS)
    if tokens <= 0:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for key in lists:
            pipe.lpush(key, *([1] * tokens))
            pipe.ltrim(key, 0, WAKE_TOKENS - 1)
        await pipe.execute()
