"""A job's inputs as producers give them: any iterable of URIs, sync or async; sent inline
when short, else in chunks."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")
Inputs = Iterable[str] | AsyncIterable[str]


def small_list(inputs: Inputs, limit: int) -> Sequence[str] | None:
    """The inputs as a sequence if they are one already and short enough to send inline."""
    if isinstance(inputs, list | tuple) and len(inputs) <= limit:
        return inputs
    return None


async def chunks(inputs: Iterable[T] | AsyncIterable[T], size: int) -> AsyncIterator[list[T]]:
    """The items of a sync or async iterable, ``size`` at a time (the last chunk may be short)."""
    chunk: list[T] = []
    if isinstance(inputs, AsyncIterable):
        async for value in inputs:
            chunk.append(value)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    else:
        for value in inputs:
            chunk.append(value)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk
