"""One Lua script call that carries a batch of entries, written without losing any.

The store stage and the job endings both write this way: one EVALSHA per batch, the script
loaded when Redis lacks it (first use, or a restart emptied its script cache), a lost
connection retried with backoff until it works, loading included. The scripts run each
entry under pcall, so an entry Redis refuses fails alone (`refused_pairs`).
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


class BatchedScript:
    def __init__(self, redis: Redis, source: str, what: str) -> None:
        self.redis, self.source, self.what = redis, source, what
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def run(
        self,
        keys: Sequence[str],
        args: Sequence[Value],
        on_error: Callable[[ResponseError], None],
        give_up_after_s: float | None = None,
    ) -> Any:
        """Run the script once; what it returned, or None if Redis refused the call (after
        ``on_error(exc)``) or stayed unreachable past ``give_up_after_s`` (None: never give
        up)."""
        delay = 0.1
        deadline = None if give_up_after_s is None else time.monotonic() + give_up_after_s
        missing = False
        while True:
            try:
                if missing:
                    await self.redis.script_load(self.source)
                    missing = False
                return await self.redis.evalsha(self.sha, len(keys), *keys, *args)
            except NoScriptError:
                missing = True
            except ResponseError as exc:
                on_error(exc)
                return None
            except RedisError as exc:
                if deadline is not None and time.monotonic() + delay > deadline:
                    log.error(f"{self.what} failed, giving up", error=str(exc))
                    return None
                log.warning(f"{self.what} failed, retrying", error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)


def refused_pairs(flat: Sequence[Any] | None) -> list[tuple[int, str]]:
    """The (place, error) pairs a script that runs each entry under pcall returns for the
    entries Redis refused, from its flat reply (None: the call itself failed)."""
    flat = flat or []
    return [(int(flat[i]), _text(flat[i + 1])) for i in range(0, len(flat), 2)]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
