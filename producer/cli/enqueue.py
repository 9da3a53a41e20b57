"""Inputs and options for `sluice enqueue`: KEY=VALUE parsing and streaming inputs from a file.

A file of a million inputs is never held in memory: a reader thread hands it to the event
loop in chunks through a bounded queue, so at most ``QUEUED_CHUNKS`` chunks wait while
the client writes earlier ones to Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from producer.client.client import Client
from producer.contract.errors import InvalidJob, QueueFull
from producer.contract.validation import MAX_OPTIONS_DEPTH

CHUNK_LINES = 1000  # lines per hand-over from the reader thread; matches the client's RPUSH
QUEUED_CHUNKS = 4


def open_inputs(path: str, stack: contextlib.ExitStack) -> TextIO:
    """The file of inputs (``-``: stdin), closed with ``stack``; a usage error if unreadable."""
    if path == "-":
        return sys.stdin
    try:
        return stack.enter_context(Path(path).open(encoding="utf-8"))
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror}"
        raise typer.BadParameter(message, param_hint="--from-file") from None


class OptionError(ValueError):
    """A --option that is not KEY=VALUE; the message names it."""


def _no_constants(name: str) -> Any:
    # json accepts NaN and Infinity, which no other JSON reader does: keep them as strings
    raise ValueError(name)


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a dict; VALUE is parsed as JSON when it is valid JSON, else kept."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"malformed option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(raw, parse_constant=_no_constants)
        except ValueError:
            options[key] = raw
        except RecursionError:  # json recurses: about a thousand levels are past its stack
            raise OptionError(
                f"option {key[:100]!r}: nested deeper than {MAX_OPTIONS_DEPTH} levels"
            ) from None
    return options


def clean_lines(lines: Iterable[str]) -> list[str]:
    """The inputs among these lines: stripped, without blanks and ``#`` comments."""
    stripped = (line.strip() for line in lines)
    return [line for line in stripped if line and not line.startswith("#")]


class _End:
    """Queued after the last chunk, carrying the reader's error if it had one."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error


class LineReader:
    """Reads inputs from a text stream in a thread and hands them to the loop in chunks.

    At most ``queued_chunks`` chunks wait in the queue: the thread takes a slot before it
    hands one over and the loop frees it when it takes one. The thread is a daemon, not an
    executor job, so an early stop (a bad input at line 5 of a terminal's stdin) never
    leaves the process waiting at exit for a read that may never return.
    """

    def __init__(self, source: Iterator[str], chunk_lines: int, queued_chunks: int) -> None:
        self.source, self.chunk_lines = source, chunk_lines
        self.slots = threading.Semaphore(queued_chunks)
        # one more place than slots, for the end marker
        self.queue: asyncio.Queue[list[str] | _End] = asyncio.Queue(maxsize=queued_chunks + 1)
        self.stop = threading.Event()

    def _take_slot(self) -> bool:
        """Wait for room in the queue; False once the loop stopped listening."""
        while not self.slots.acquire(timeout=0.1):
            if self.stop.is_set():
                return False
        return not self.stop.is_set()

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while raw := list(islice(self.source, self.chunk_lines)):
                chunk = clean_lines(raw)
                if not chunk:
                    continue
                if not self._take_slot():
                    return
                loop.call_soon_threadsafe(self.queue.put_nowait, chunk)
            loop.call_soon_threadsafe(self.queue.put_nowait, _End())
        except Exception as exc:
            # an unreadable file; if the loop has closed meanwhile, nobody is left to tell
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.queue.put_nowait, _End(exc))

    async def chunks(self) -> AsyncGenerator[list[str], None]:
        loop = asyncio.get_running_loop()
        name = "sluice-input-reader"
        threading.Thread(target=self._read, args=(loop,), name=name, daemon=True).start()
        try:
            while not isinstance(item := await self.queue.get(), _End):
                self.slots.release()
                yield item
            if item.error is not None:
                raise InvalidJob(f"cannot read the inputs: {item.error}") from item.error
        finally:
            self.stop.set()


async def stream_inputs(
    source: Iterator[str],
    on_chunk: Callable[[int], None] | None = None,
    *,
    chunk_lines: int = CHUNK_LINES,
    queued_chunks: int = QUEUED_CHUNKS,
) -> AsyncGenerator[str, None]:
    """Yield the inputs of ``source``, one per line, read in a thread a chunk at a time.

    ``on_chunk`` is called with the number of inputs in each chunk as it arrives.
    """
    reader = LineReader(source, chunk_lines, queued_chunks)
    async with contextlib.aclosing(reader.chunks()) as chunks:
        async for chunk in chunks:
            if on_chunk is not None:
                on_chunk(len(chunk))
            for value in chunk:
                yield value


async def combined(first: list[str], rest: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """The inputs given as arguments, then the ones streamed from a file."""
    for value in first:
        yield value
    async for value in rest:
        yield value


async def enqueue_streamed(
    client: Client,
    pipeline: str,
    first: list[str],
    source: Iterator[str],
    console: Console,
    **job: Any,
) -> str:
    """Enqueue ``first`` then the lines of ``source``, counting inputs read on ``console``."""
    columns = (
        SpinnerColumn(),
        TextColumn("reading inputs"),
        TextColumn("{task.completed:,.0f}", style="bold"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("read", total=None, completed=len(first))

        def count(read: int) -> None:
            progress.advance(task, read)

        # closed explicitly, so an enqueue refused halfway stops the reader thread at once
        async with (
            contextlib.aclosing(stream_inputs(source, count)) as streamed,
            contextlib.aclosing(combined(first, streamed)) as inputs,
        ):
            return await client.enqueue(pipeline, inputs, **job)


async def enqueue_each(
    client: Client,
    pipeline: str,
    first: list[str],
    source: Iterator[str] | None,
    on_ids: Callable[[list[str]], None],
    **job: Any,
) -> list[str]:
    """One job per input: ``first``, then the lines of ``source``, ``CHUNK_LINES`` jobs per
    `Client.enqueue_many`; ``on_ids`` gets each chunk's ids as soon as they are queued, so
    a refusal halfway (a bad line) still reports every job already queued."""

    async def nothing() -> AsyncGenerator[str, None]:
        return
        yield  # an async generator that yields nothing

    ids: list[str] = []
    streamed = stream_inputs(source) if source is not None else nothing()
    async with (
        contextlib.aclosing(streamed) as rest,
        contextlib.aclosing(combined(first, rest)) as inputs,
    ):
        chunk: list[list[str]] = []
        async for value in inputs:
            chunk.append([value])
            if len(chunk) == CHUNK_LINES:
                ids += await _enqueue_chunk(client, pipeline, chunk, on_ids, len(ids), **job)
                chunk = []
        if chunk or not ids:
            ids += await _enqueue_chunk(client, pipeline, chunk, on_ids, len(ids), **job)
    return ids


async def _enqueue_chunk(
    client: Client,
    pipeline: str,
    chunk: list[list[str]],
    on_ids: Callable[[list[str]], None],
    before: int,
    **job: Any,
) -> list[str]:
    if not chunk:
        raise InvalidJob("no inputs: give input URIs as arguments or with --from-file")
    try:
        ids = await client.enqueue_many(pipeline, chunk, **job)
    except QueueFull as exc:
        on_ids(exc.enqueued)
        raise
    except InvalidJob as exc:
        if exc.job is None:  # the pipeline or options, not one input
            raise
        # the job is this chunk's, and has one input: name that input among all of them
        reason = exc.reason.removeprefix("input 0: ")
        raise InvalidJob(f"input {before + exc.job}: {reason}") from None
    on_ids(ids)
    return ids
