"""Running Lua scripts: `run_script`, the one way (EVALSHA, the script loaded where the server
lacks it, then WAIT for replicas where asked), and `BatchedScript`, one call that carries a
batch of entries, written without losing any.

The store stage and the job endings both write this way: one EVALSHA per batch, the script
loaded when Redis lacks it (first use, a restart or a new primary emptied its script cache),
a lost connection or a failover retried with backoff until it works, loading included. The
scripts run each entry under pcall, so an entry Redis refuses fails alone (`refused_pairs`);
their reply is the flat list of (place, error) pairs of the refused ones.

Every retry is safe: records are HSETNX, endings fenced. A call that a replica refused
(a primary demoted under it: every entry refused READONLY) is retried like a lost one, on
the primary found afresh (`producer.redis.failover`). With SLUICE_REDIS_WAIT_REPLICAS, the store's
call is not done until that many replicas confirm it, and is retried until they do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from redis.exceptions import NoScriptError, RedisError, ResponseError

from producer.redis.backoff import Backoff
from producer.redis.failover import (
    ReplicaWait,
    check_refusals,
    forget_primary,
    is_failover_error,
    primary_in_doubt,
)
from producer.redis.typed import Redis

log = structlog.get_logger("sluice.worker")

RETRY_MAX_S = 5.0

Value = str | int | float | bytes


async def run_script(
    redis: Redis,
    sha: str,
    source: str,
    keys: Sequence[Any],
    args: Sequence[Any],
    wait: ReplicaWait | None = None,
) -> Any:
    """EVALSHA, loading the script first where the server lacks it (first use, a restart, a
    new primary); with ``wait``, then WAIT for replicas on the same connection."""
    try:
        return await _evalsha(redis, sha, keys, args, wait)
    except NoScriptError:
        if wait is None:  # EVAL: on a cluster, the node that serves the keys caches it
            return await redis.eval(source, len(keys), *keys, *args)
        await redis.script_load(source)
        return await _evalsha(redis, sha, keys, args, wait)


async def _evalsha(
    redis: Redis, sha: str, keys: Sequence[Any], args: Sequence[Any], wait: ReplicaWait | None
) -> Any:
    if wait is None:
        return await redis.evalsha(sha, len(keys), *keys, *args)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.evalsha(sha, len(keys), *keys, *args)
        wait.queue(pipe)
        reply, _mark, acked = await pipe.execute(raise_on_error=False)
    if isinstance(reply, Exception):
        raise reply
    wait.check(acked)
    return reply


class BatchedScript:
    def __init__(
        self, redis: Redis, source: str, what: str, wait: ReplicaWait | None = None
    ) -> None:
        self.redis, self.source, self.what, self.wait = redis, source, what, wait
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
        backoff = Backoff(give_up_after_s, first_s=0.1, max_s=RETRY_MAX_S)
        while True:
            try:
                result = await run_script(self.redis, self.sha, self.source, keys, args, self.wait)
                check_refusals(result)
                return result
            except ResponseError as exc:
                if not is_failover_error(exc):
                    on_error(exc)
                    return None
                error: RedisError = exc
            except RedisError as exc:
                error = exc
            if primary_in_doubt(error):
                await forget_primary(self.redis)
            if backoff.expired():
                log.error(f"{self.what} failed, giving up", error=str(error))
                return None
            log.warning(f"{self.what} failed, retrying", error=str(error), retry_in_s=backoff.delay)
            await backoff.pause()


def refused_pairs(flat: Sequence[Any] | None) -> list[tuple[int, str]]:
    """The (place, error) pairs a script that runs each entry under pcall returns for the
    entries Redis refused, from its flat reply (None: the call itself failed)."""
    flat = flat or []
    return [(int(flat[i]), _text(flat[i + 1])) for i in range(0, len(flat), 2)]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
