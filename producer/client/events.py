"""Reading the job event stream: `Client.events`, and `Client.wait`, which wakes on it.

An XREAD that blocks costs the server nothing while it waits, where a poll costs a status
read every few hundred ms per waiter. The stream is a hint, not the record: it is bounded
(SLUICE_EVENTS_MAXLEN), may be off (0), and a failover may lose its newest entries, so
`wait` reads the status hash again on each wake and at least every WAIT_FALLBACK_S.
A lost connection or a failover is retried as an enqueue's reads are
(`producer.redis.failover.Tries`, up to SLUICE_ENQUEUE_TIMEOUT_S, then ServerUnavailable).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, Iterable
from functools import partial

from redis.typing import KeyT, StreamIdT

from producer.client.enqueue import Enqueueing
from producer.client.inspect import read_status
from producer.client.merged_events import entry_id as _id
from producer.client.merged_events import read_merged, start_below_clocks
from producer.contract.errors import WaitTimeout
from producer.contract.events import Event, EventType
from producer.contract.models import JobStatus
from producer.contract.validation import check_job_id

BLOCK_S = 5.0  # one XREAD waits at most this long (then a follower asks again)
READ_COUNT = 500  # entries one XREAD returns at most
WAIT_FALLBACK_S = 1.0  # `wait` reads the status at least this often, events or not
NEWEST = "$"  # ``since``: only events written from now on
OLDEST = "0"  # ``since``: every event the stream still holds
STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")  # "{ms}-{seq}", or "{ms}"


class Watching(Enqueueing):
    """The event reads of `Client` (kept apart: the client's module is long enough)."""

    async def events(
        self,
        *,
        since: str = NEWEST,
        job_id: str | None = None,
        types: Iterable[EventType | str] | None = None,
        follow: bool = True,
    ) -> AsyncGenerator[Event, None]:
        """Job events in the order they happened, after the stream id ``since`` ("$": from
        now on, "0": every one the stream still holds); only ``job_id``'s, only ``types``.

        With ``follow`` it waits for new ones for ever; without, it stops once it has read
        everything written so far. Each event's ``id`` can be passed as ``since`` to go on
        from it later. With SLUICE_EVENTS_MAXLEN=0 nothing is written, so nothing comes.
        """
        if job_id is not None:
            check_job_id(job_id)  # as every other look-up by id: no id can be any other
        wanted = _types(types)
        after = await self._start_id(since)
        while True:
            block_ms = int(BLOCK_S * 1000) if follow else None
            entries = await self._read(after, block_ms)
            if not entries and not follow:
                return
            for entry_id, fields in entries:
                after = _text(entry_id)
                for event in Event.from_entry(entry_id, fields):
                    if job_id is not None and event.job != job_id:
                        continue
                    if wanted is None or event.type in wanted:
                        yield event

    async def wait(
        self, job_id: str, *, timeout_s: float | None = None, poll_s: float = 0.2
    ) -> JobStatus:
        """Wait until the job is complete, failed, cancelled or not found; WaitTimeout past
        ``timeout_s``.

        Woken by the job's ending event; the status is read again on each wake and at least
        every WAIT_FALLBACK_S (the stream may be trimmed past it). With events off
        (SLUICE_EVENTS_MAXLEN=0) it reads the status every ``poll_s`` instead.
        """
        check_job_id(job_id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        events_on = self.settings.events_maxlen > 0
        after = await self._start_id(NEWEST) if events_on else ""  # before the status read
        while True:
            with self._reachable():
                status = await read_status(self.redis, self.keys, job_id)
            if status.state.is_final:
                return status
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise WaitTimeout(f"job {job_id} still {status.state} after {timeout_s:g} s")
            if not events_on:
                await asyncio.sleep(poll_s if left is None else min(poll_s, left))
                continue
            pause = WAIT_FALLBACK_S if left is None else min(WAIT_FALLBACK_S, left)
            after = await self._until_ended(job_id, after, pause)

    async def _until_ended(self, job_id: str, after: str, within_s: float) -> str:
        """Read the stream until an ending event of ``job_id`` or ``within_s`` passes; the id
        read up to."""
        end = time.monotonic() + within_s
        while (left := end - time.monotonic()) > 0:
            entries = await self._read(after, max(1, int(left * 1000)))
            for entry_id, fields in entries:
                after = _text(entry_id)
                for event in Event.from_entry(entry_id, fields):
                    if event.job == job_id and event.type.is_final:
                        return after
        return after

    async def _start_id(self, since: str) -> str:
        """``since`` as an id to read after: "$" becomes the newest entry's id now, so that
        nothing written between two reads is missed."""
        if since != NEWEST:
            return check_since(since)
        tries = self._tries()
        if self.keys.sharded:  # from below every shard's clock (merged_events)
            return await start_below_clocks(self.redis, self.keys.every_shard(), tries)
        newest = await tries.read(partial(self.redis.xrevrange, self.keys.events, count=1))
        ms, seq = _id(newest[0][0]) if newest else (0, 0)
        return f"{ms}-{seq}"

    async def _read(
        self, after: str, block_ms: int | None
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """The entries after ``after`` (waiting up to ``block_ms`` for one, None: not at all)."""
        if self.keys.sharded:  # a BLOCK cannot span hash slots: polled (merged_events)
            shards = self.keys.every_shard()
            return await read_merged(self.redis, shards, after, READ_COUNT, block_ms, self._tries())
        streams: dict[KeyT, StreamIdT] = {self.keys.events: after}
        tries = self._tries()
        reply = await tries.read(
            lambda: self.redis.xread(streams, count=READ_COUNT, block=block_ms)
        )
        if not reply:
            return []
        _key, entries = reply[0]
        return list(entries)


def check_since(since: str) -> str:
    """``since`` if it is a stream id ("0", "{ms}" or "{ms}-{seq}"), else ValueError."""
    if not STREAM_ID.match(since) or any(int(part) >= 2**64 for part in since.split("-")):
        raise ValueError(
            f"since: {since!r} is not a stream id: use '$' (from now on), '0' (every event "
            "kept) or an event's id such as 1733390000000-0"
        )
    return since


def _types(types: Iterable[EventType | str] | None) -> frozenset[EventType] | None:
    """The event types asked for; ValueError naming one that is not a type."""
    if types is None:
        return None
    chosen = set()
    for name in types:
        try:
            chosen.add(EventType(name))
        except ValueError:
            known = ", ".join(t.value for t in EventType)
            raise ValueError(f"types: no event type {name!r} (known: {known})") from None
    return frozenset(chosen)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
