"""Ending a unit attempt, fenced by its token: the endings of the units that end in the same
moment go together, a batch a script call.

An attempt at a unit ends one of three ways on the server (`worker.lifecycle.outcome` has
the others, which write nothing):

- ``done``: every input of the unit has its record. The job's last unit to end completes
  the job — when every input has a record; if some are missing (lost with Redis data) the
  job runs again for those (``run`` + 1), and after ``SLUICE_MAX_TRIES`` runs it fails
  saying how many are missing. It is never called complete with records missing;
- ``release``: the unit goes back to the lease set, due after a delay (a retry after an
  unexpected error) or at once (handed back at shutdown; a drain does not count the try);
- ``fail``: the whole job fails with the error; its other units are withdrawn.

An ending may carry the unit's last records (the store stage leaves a unit's last batch to
it): they are written first, under the same fence, as the store stage writes records, and
the job's ``stored`` and ``failed`` with the ending's other fields; when that very call
wrote every input's record, the completeness check needs no count of them.

Each ending shows the unit's token; an ending whose token is no longer the unit's (the lease
lapsed and another worker took the unit, or the job was cancelled or reset) writes nothing,
and no ending ever overwrites a complete, failed or cancelled job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import orjson
import structlog
from redis.exceptions import ResponseError

from producer.contract.events import DEFAULT_EVENTS_MAXLEN
from producer.contract.keys import Keys, shard_of
from producer.redis.scripts import BatchedScript, Value, refused_pairs
from producer.redis.typed import Redis
from worker.lifecycle.end_script import END
from worker.lifecycle.templates import KeyTemplates

log = structlog.get_logger("sluice.worker")

STOP_WRITE_S = 5.0  # at shutdown, how long endings wait for an unreachable Redis
# Two writers of at most 32 endings a call: while one call runs on the server, the next is
# built and sent, and the claims that the freed room allows follow sooner. (One writer
# taking all that waited made calls of ~50 endings that alternated with the worker's own
# work; this measured 10-25% more one-input jobs a second on the bench's tiny workload.)
WRITERS = 2
BATCH = 32


UNSTORED = "unstored: "  # the code of an ending whose records Redis refused (then the error)


def flat(values: Mapping[str, str | int | float], out: list[str]) -> list[str]:
    """``out`` extended with name, value, name, value… as strings (the script's HSET args);
    seconds to the microsecond (what a stage's time is read to, and ~15 bytes a value less
    for Redis to parse, store and append to its append-only file)."""
    for name, value in values.items():
        if isinstance(value, float):
            value = round(value, 6)
        out += (name, value if value.__class__ is str else repr(value))
    return out


class Entry(NamedTuple):
    """One ending, as the END script reads it (a JSON list in this order)."""

    mode: str  # "done", "release" or "fail"
    job_id: str
    unit: int
    token: str  # the hand-out's: the ending is written only while it holds the unit
    delay_ms: int = 0  # release: when the unit may run again
    undo_try: int = 0  # release: 1 when this try does not count (a drain)
    plain: int = 0  # done: 1 when the counters are set, not added (the hash holds none)
    fields: tuple[str, ...] = ()  # written when the job ends: its error, its pipeline
    counters: tuple[str, ...] = ()  # name, value... added to (or set in) the hash


@dataclass(slots=True)
class _Ending:
    job_id: str
    entry: Entry
    done: asyncio.Future[str]
    records: Sequence[Value]  # the unit's last records, as the store stage's arguments


class Endings:
    """Writes unit endings, batched: up to BATCH a script call, WRITERS calls in flight."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        result_ttl_s: int,
        most_runs: int,
        events_maxlen: int = DEFAULT_EVENTS_MAXLEN,
    ) -> None:
        self.redis, self.keys, self.ttl_s = redis, keys, result_ttl_s
        self.events_maxlen = events_maxlen
        self.most_runs = most_runs
        self._waiting: list[_Ending] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._script = BatchedScript(redis, END, "unit ending")
        self._shards = [_shard_call(k) for k in keys.every_shard()]

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"sluice-endings-{n}") for n in range(WRITERS)
        ]

    async def stop(self) -> None:
        """Write what is waiting, then stop; past STOP_WRITE_S without Redis, leave it: those
        units' leases lapse, so another worker redoes what is unstored."""
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        if self._waiting:  # all in one call: one wait, at most, for an unreachable Redis
            waiting, self._waiting = self._waiting, []
            await self._flush(waiting, give_up_after_s=STOP_WRITE_S)

    async def send(self, job_id: str, entry: Entry, records: Sequence[Value] = ()) -> str:
        """Queue one ending (as the END script reads it), with the unit's last records to
        write first (index, record JSON, "1" | "0", blob or "" each), and wait for its code."""
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Ending(job_id, entry, done, records))
        self._wake.set()
        # the write goes on even if this attempt is cancelled while it waits (that cancels
        # only ``done``: the entry stays waiting, and every waiting entry is sent)
        return await done

    def _take(self) -> list[_Ending]:
        taken, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
        if not self._waiting:
            self._wake.clear()
        return taken

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            taken = self._take()
            if taken:  # the other writer may have taken them all
                await self._flush(taken)

    async def _flush(self, endings: list[_Ending], give_up_after_s: float | None = None) -> None:
        if len(self._shards) == 1:
            await self._flush_shard(self._shards[0], endings, give_up_after_s)
            return
        groups: dict[int, list[_Ending]] = {}  # a sharded layout: one call per shard
        for e in endings:
            groups.setdefault(shard_of(e.job_id, len(self._shards)), []).append(e)
        calls = (self._flush_shard(self._shards[s], g, give_up_after_s) for s, g in groups.items())
        await asyncio.gather(*calls)

    async def _flush_shard(
        self,
        shard: tuple[list[str], list[Value], str],
        endings: list[_Ending],
        give_up_after_s: float | None,
    ) -> None:
        keys, templates, queue = shard

        def refused(exc: ResponseError) -> None:  # the script itself failed
            log.error("cannot write unit endings", units=len(endings), error=str(exc))

        records: list[Value] = []
        rows: list[list[object]] = []
        first = 8 + len(templates)  # the ARGV place of the first record
        for e in endings:
            rows.append(list(e.entry))
            if e.records:
                rows[-1].append((first + len(records), first + len(records) + len(e.records) - 4))
                records += e.records
        args = [
            orjson.dumps(rows),
            self.ttl_s * 1000,
            self.ttl_s,
            self.most_runs,
            queue,
            self.events_maxlen,
            len(templates),
            *templates,
            *records,
        ]
        codes = dict(refused_pairs(await self._script.run(keys, args, refused, give_up_after_s)))
        for n, ending in enumerate(endings):
            if not ending.done.done():
                ending.done.set_result(codes.get(n, "unwritten"))


def _shard_call(k: Keys) -> tuple[list[str], list[Value], str]:
    """The END script's keys, key templates and default queue for one shard."""
    keys = [k.queue, k.leases, k.running, k.failed, k.webhooks, k.shard_webhook_default, k.events]
    templates: list[Value] = list(
        KeyTemplates(
            k.job, k.arq_job, k.arq_result, k.results, k.blobs, k.inputs, k.spec, k.named_queue
        ).args
    )
    return keys, templates, k.queue
