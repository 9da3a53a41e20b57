"""Running one Lua script for many calls in one pipelined round trip, without losing any.

The store stage and the job endings both write this way: EVALSHA by hand (redis-py checks
SCRIPT EXISTS before every pipeline holding a Script object, a second round trip per
batch), the script loaded when Redis lacks it, a lost connection retried with backoff
until it works, and a command error confined to the call at fault.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError, ResponseError

log = structlog.get_logger("sluice.worker")

RETRY_MAX_S = 5.0

Value = str | int | float | bytes
Call = tuple[Sequence[str], Sequence[Value]]  # keys, args


class BatchedScript:
    def __init__(self, redis: Redis, source: str, what: str) -> None:
        self.redis, self.source, self.what = redis, source, what
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def run(
        self,
        calls: Sequence[Call],
        on_error: Callable[[int, ResponseError], None],
        give_up_after_s: float | None = None,
    ) -> list[Any] | None:
        """Run the script once per call; ``on_error(i, exc)`` for a call Redis refused. What
        each call returned (None for a refused one), or None if Redis stayed unreachable past
        ``give_up_after_s`` (None: never give up)."""
        delay = 0.1
        deadline = None if give_up_after_s is None else time.monotonic() + give_up_after_s
        while True:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for keys, args in calls:
                        pipe.evalsha(self.sha, len(keys), *keys, *args)
                    return list(await pipe.execute())
            except NoScriptError:  # first use, or Redis restarted: every call failed alike
                await self.redis.script_load(self.source)
            except ResponseError:
                return await self._each(calls, on_error)
            except RedisError as exc:
                if deadline is not None and time.monotonic() + delay > deadline:
                    log.error(f"{self.what} failed, giving up", error=str(exc), calls=len(calls))
                    return None
                log.warning(f"{self.what} failed, retrying", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    async def _each(
        self, calls: Sequence[Call], on_error: Callable[[int, ResponseError], None]
    ) -> list[Any]:
        results: list[Any] = []
        for i, (keys, args) in enumerate(calls):
            try:
                results.append(await self.redis.eval(self.source, len(keys), *keys, *args))
            except ResponseError as exc:
                on_error(i, exc)
                results.append(None)
        return results


def refused_pairs(flat: Sequence[Any] | None) -> list[tuple[int, str]]:
    """The (place, error) pairs a script that runs each entry under pcall returns for the
    entries Redis refused, from its flat reply (None: the call itself failed)."""
    flat = flat or []
    return [(int(flat[i]), _text(flat[i + 1])) for i in range(0, len(flat), 2)]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
