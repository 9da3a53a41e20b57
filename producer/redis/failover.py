"""Writes that survive a failover of the primary.

A server that is not, or no longer, the primary answers a write with one of FAILOVER_CODES
(a replica, a demoted primary, a server still loading its data). Such an answer, like a lost
connection, means "try again on the primary": the connection that got it is dropped
(`producer.redis.pool`), so the next one goes to the primary the sentinels name now, or
wherever a managed endpoint's name points now.

Writes retried this way are safe to repeat: records are HSETNX, claims and endings are
fenced, and an enqueue recognises its own job. With SLUICE_REDIS_WAIT_REPLICAS a write also
waits (WAIT) until that many replicas have it, and is not done until they do: replication is
asynchronous, so a primary that dies, or that is demoted while writes still reach it, takes
with it whatever no replica had.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from redis.asyncio.client import Pipeline
from redis.exceptions import (
    BusyLoadingError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from producer.contract.keys import Keys
from producer.contract.settings import ClientSettings
from producer.redis.backoff import Backoff
from producer.redis.typed import Redis

T = TypeVar("T")

# READONLY: a replica (perhaps the primary of a moment ago); MASTERDOWN: a replica cut off
# from its primary; NOREPLICAS: a primary without the replicas min-replicas-to-write asks
# for (as a demoted primary is once its replica is promoted); LOADING: a restarted server
# reading its data; UNBLOCKED: a blocked command cut short because the server became a replica.
FAILOVER_CODES = frozenset({"READONLY", "MASTERDOWN", "NOREPLICAS", "LOADING", "UNBLOCKED"})


class NotPrimary(RedisConnectionError):
    """The server refused a write as only a server that is not the primary would."""


class NotConfirmed(RedisConnectionError):
    """The primary took the write, but fewer replicas than asked confirmed it in time."""


def failover_code(text: str) -> str | None:
    """The code of FAILOVER_CODES an error's text starts with, if any."""
    code = text.split(" ", 1)[0]
    return code if code in FAILOVER_CODES else None


def is_failover_error(exc: BaseException) -> bool:
    """Whether Redis refused because the server is not the primary (yet, or any more)."""
    if isinstance(exc, ReadOnlyError | BusyLoadingError):  # redis-py strips their codes
        return True
    return isinstance(exc, ResponseError) and failover_code(str(exc)) is not None


def retryable(exc: BaseException) -> bool:
    """Whether the same write may work if tried again: the connection was lost or timed out,
    or the server was not the primary."""
    lost = isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)
    return lost or is_failover_error(exc)


def check_refusals(flat: object) -> None:
    """NotPrimary if a script that runs each entry under pcall had one refused by a replica.

    pcall hands the refusal to the script, which reports it like any other; but on a replica
    every write is refused, so the call as a whole wrote nothing and may simply run again.
    """
    if not isinstance(flat, list):
        return
    for error in flat[1::2]:
        text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        if failover_code(text):
            raise NotPrimary(text)


def primary_in_doubt(exc: BaseException) -> bool:
    """Whether the error says the server written to may not be the primary any more."""
    return isinstance(exc, NotPrimary | NotConfirmed) or is_failover_error(exc)


async def forget_primary(redis: Redis) -> None:
    """Drop the idle connections, so the next ones find the primary afresh."""
    with contextlib.suppress(RedisError, OSError):  # closing a broken connection may fail
        await redis.connection_pool.disconnect(inuse_connections=False)


@dataclass(frozen=True, slots=True)
class ReplicaWait:
    """SLUICE_REDIS_WAIT_REPLICAS: the replicas a write waits for, and for how long a try."""

    replicas: int
    timeout_ms: int
    mark: str  # a counter bumped before each WAIT (see `queue`)

    @classmethod
    def of(cls, settings: ClientSettings, keys: Keys) -> ReplicaWait | None:
        if not settings.redis_wait_replicas:
            return None
        return cls(settings.redis_wait_replicas, settings.redis_wait_timeout_ms, keys.wait_mark)

    def queue(self, pipe: Pipeline) -> None:
        """Add the WAIT to a pipeline, after the writes it is for.

        WAIT waits for the offset of the connection's last write. A retried write may change
        nothing (it landed before, from another connection, unconfirmed), so the mark is
        bumped first: WAIT then covers everything this server took, whoever wrote it.
        """
        pipe.incr(self.mark)
        pipe.wait(self.replicas, self.timeout_ms)

    def check(self, acked: int | Exception) -> None:
        """NotConfirmed unless WAIT's answer counts enough replicas."""
        if isinstance(acked, Exception):
            raise acked
        if int(acked) < self.replicas:
            raise NotConfirmed(
                f"{acked} of {self.replicas} replicas confirmed the write within "
                f"{self.timeout_ms} ms (SLUICE_REDIS_WAIT_REPLICAS, SLUICE_REDIS_WAIT_TIMEOUT_MS)"
            )


class Tries:
    """Tries of one producer operation through a failover: each failure that another try may
    mend is followed by a pause (doubling), and past ``timeout_s`` by ``unavailable(exc)``."""

    def __init__(
        self,
        redis: Redis,
        timeout_s: float,
        unavailable: Callable[[BaseException], Exception],
    ) -> None:
        self.redis, self.unavailable = redis, unavailable
        self.backoff = Backoff(timeout_s, first_s=0.05, max_s=1.0)

    async def again(self, exc: BaseException) -> None:
        """After a failed try: re-raise ``exc`` if another cannot help, else pause (finding
        the primary afresh if it is in doubt) or, past the deadline, raise ``unavailable``."""
        if not retryable(exc):
            raise exc
        if primary_in_doubt(exc):
            await forget_primary(self.redis)
        if self.backoff.expired():
            raise self.unavailable(exc) from None
        await self.backoff.pause()

    async def read(self, make: Callable[[], Awaitable[T]]) -> T:
        """A read, or a write safe to repeat, tried until it works or the deadline passes."""
        while True:
            try:
                return await make()
            except (RedisError, OSError) as exc:
                await self.again(exc)
