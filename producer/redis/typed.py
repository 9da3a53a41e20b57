"""redis-py's clients as strict mypy should read them: the types of the commands Sluice uses as
they are at run time, where redis-py 5 declares them otherwise.

redis-py 5 declares each command once for its sync and asyncio clients, returning
``Awaitable[T] | T``, which strict mypy will not await; its ``T`` is often the decoded ``str``,
where Sluice's clients (``decode_responses=False``) get ``bytes``; and many of its arguments
are narrower than it takes (keys as ``str``, never ``bytes``; values as ``str``, never ``int``).
So here, for the type checker only, `Redis`, `Pipeline` and `SyncRedis` are redis-py's classes
with those commands re-declared as redis-py runs them; at run time they *are* redis-py's
classes (all that runs here is `typed`, a cast). Every other command, and every other class
(scripts, pools, exceptions), keeps redis-py's own types. ``[[tool.mypy.overrides]]`` in
pyproject.toml lets these re-declarations differ from redis-py's (mypy's ``override`` check,
this module only).

A client made elsewhere (arq's `ArqRedis`, a plain ``redis.asyncio.Redis``) is read as one of
these by `typed`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast, overload

import redis as _redis_sync
import redis.asyncio as _redis_async
import redis.asyncio.client as _redis_async_client

if TYPE_CHECKING:
    from collections.abc import Awaitable, Coroutine, Mapping, Sequence
    from typing import Protocol, Self, TypeVar

    from redis.typing import EncodableT, FieldT, KeyT

    _R = TypeVar("_R", covariant=True)

    class _HSet(Protocol[_R]):
        """HSET, declared once for every client: what it returns is the client's (``_R``)."""

        def __call__(
            self,
            name: KeyT,
            key: FieldT | None = None,
            value: EncodableT | None = None,
            mapping: Mapping[Any, EncodableT] | None = None,
            items: list[EncodableT] | None = None,
        ) -> _R: ...

    class Pipeline(_redis_async_client.Pipeline):
        """A pipeline: commands are queued (each returns the pipeline), `execute` sends them."""

        hset: _HSet[Self]

        def hget(self, name: KeyT, key: FieldT) -> Self: ...
        def hgetall(self, name: KeyT) -> Self: ...
        def hmget(self, name: KeyT, keys: FieldT | Sequence[FieldT], *args: FieldT) -> Self: ...

    class Redis(_redis_async.Redis):
        """An asyncio client whose replies are not decoded (``decode_responses=False``)."""

        hset: _HSet[Coroutine[Any, Any, int]]

        @classmethod
        def from_url(cls, url: str, **kwargs: Any) -> Self: ...
        @classmethod
        def from_pool(cls, connection_pool: _redis_async.ConnectionPool) -> Self: ...
        def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline: ...
        def blpop(  # a coroutine, as redis-py's (an async def would take a timeout: ASYNC109)
            self, keys: KeyT | Sequence[KeyT], timeout: float | None = 0
        ) -> Awaitable[tuple[bytes, bytes] | None]: ...
        async def eval(self, script: str, numkeys: int, *keys_and_args: EncodableT) -> Any: ...
        async def evalsha(self, sha: str, numkeys: int, *keys_and_args: EncodableT) -> Any: ...
        async def get(self, name: KeyT) -> bytes | None: ...
        async def hget(self, name: KeyT, key: FieldT) -> bytes | None: ...
        async def hgetall(self, name: KeyT) -> dict[bytes, bytes]: ...
        async def hlen(self, name: KeyT) -> int: ...
        async def hmget(
            self, name: KeyT, keys: FieldT | Sequence[FieldT], *args: FieldT
        ) -> list[bytes | None]: ...
        async def hvals(self, name: KeyT) -> list[bytes]: ...
        async def info(self, section: str | None = None, *args: str) -> dict[str, Any]: ...
        async def llen(self, name: KeyT) -> int: ...
        async def lrange(self, name: KeyT, start: int, end: int) -> list[bytes]: ...
        async def rpush(self, name: KeyT, *values: EncodableT) -> int: ...
        async def sadd(self, name: KeyT, *values: EncodableT) -> int: ...
        async def scard(self, name: KeyT) -> int: ...
        async def sismember(self, name: KeyT, value: EncodableT) -> Literal[0, 1]: ...
        @overload
        async def zrange(
            self, name: KeyT, start: int, end: int, *, withscores: Literal[False] = False
        ) -> list[bytes]: ...
        @overload
        async def zrange(
            self, name: KeyT, start: int, end: int, *, withscores: Literal[True]
        ) -> list[tuple[bytes, float]]: ...
        async def zrange(
            self, name: KeyT, start: int, end: int, *, withscores: bool = False
        ) -> list[bytes] | list[tuple[bytes, float]]: ...

    class SyncRedis(_redis_sync.Redis):
        """A sync client whose replies are not decoded (``decode_responses=False``)."""

        hset: _HSet[int]

        @classmethod
        def from_url(cls, url: str, **kwargs: Any) -> Self: ...
        def get(self, name: KeyT) -> bytes | None: ...
        def hget(self, name: KeyT, key: FieldT) -> bytes | None: ...
        def hgetall(self, name: KeyT) -> dict[bytes, bytes]: ...
        def info(self, section: str | None = None, *args: str) -> dict[str, Any]: ...
        def llen(self, name: KeyT) -> int: ...
        def lrange(self, name: KeyT, start: int, end: int) -> list[bytes]: ...
        def zrange(self, name: KeyT, start: int, end: int) -> list[bytes]: ...

else:
    Pipeline = _redis_async_client.Pipeline
    Redis = _redis_async.Redis
    SyncRedis = _redis_sync.Redis


def typed(client: _redis_async.Redis) -> Redis:
    """``client`` read as `Redis` (it is one at run time: `Redis` is redis-py's class)."""
    return cast("Redis", client)
