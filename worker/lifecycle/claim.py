"""Claiming units: as many as the worker's pipeline has room for, in one Lua call.

A claim first takes over units whose lease lapsed (a dead or paused worker's, or units handed
back), oldest first, then hands out ready work from the queue in due order. A job is split
into units the first time it is claimed; after that the queue holds only its *next* unit as
due, re-queued behind the other due work each time a unit is handed out, so the units of a
big job take turns with the jobs queued after it rather than running ahead of them. Held
units are in the lease set, not the queue: a claim never reads past them, and its cost does
not grow with the work other workers hold. Work of a pipeline the worker does not run,
but another worker registered, is passed over and left for that worker.

Every hand-out writes a fresh token into the unit's field of the status hash; every later
write for the unit must show that token (`worker.lifecycle.endings`, the store stage).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson
import structlog
from redis.typing import EncodableT

from producer.contract.events import DEFAULT_EVENTS_MAXLEN
from producer.contract.keys import DEFAULT_QUEUE, UNIT_SEPARATOR, Keys, shard_of
from producer.contract.settings import ClientSettings
from producer.contract.status import unit_field
from producer.redis.typed import Redis
from producer.redis.wake import push_wake
from worker.lifecycle.claim_script import CLAIM, FIELDS, WINDOW_MAX
from worker.lifecycle.templates import KeyTemplates

log = structlog.get_logger("sluice.worker")

DEFAULT_MAX_INPUTS: int = ClientSettings.model_fields["max_inputs_per_job"].default
IDLE_FIRST_S = 0.05  # an empty shard's first rest from an idle worker's claims
IDLE_MAX_S = 1.0  # its longest: the most an idle worker is late to work no token announced


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit of one job that this worker now holds, with what the claim read of it."""

    job_id: str
    index: int  # the unit's number within its job
    first: int  # its inputs: indexes first .. end - 1
    end: int  # -1 when the claim could not tell the job's inputs (the job will fail)
    token: str  # this hand-out's fencing token: every write for the unit shows it
    tries: int  # this try of the unit, counted by the claim
    units: int  # how many units the job has
    total: int  # the job's inputs (-1: unknown to the claim)
    envelope: bytes | None  # arq's job envelope (None: this worker has the job cached)
    started_at: float  # when the job's run started (epoch s): its timeout counts from it
    run: int  # the job's run: 1, then one more per retry or resume
    counted: bool  # an earlier attempt wrote stage counters to the status hash
    due_ms: int  # when the work became due (ms epoch), for the queue-wait metric
    stored: int = 0  # the job's inputs with a record when it was claimed

    @property
    def member(self) -> str:
        return f"{self.job_id}{UNIT_SEPARATOR}{self.index}"

    @property
    def field(self) -> str:
        return unit_field(self.index)

    @property
    def look_up_stored(self) -> bool:
        """Whether some of its inputs may have records already (an earlier try or run)."""
        return self.tries > 1 or self.run > 1 or self.stored > 0

    @property
    def size(self) -> int:
        return max(0, self.end - self.first)


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim call brought."""

    units: list[Unit]
    more: bool  # it stopped at the room or the unit limit: more may be due
    aborted: list[str]  # jobs cancelled since the last claim: stop their units
    aborts_seen_ms: int  # pass back as ``aborts_since_ms`` next time


class Claimer:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        worker: str,
        lease_s: float,
        unit_inputs: int,
        result_ttl_s: int,
        pipelines: Iterable[str] | None = None,
        queues: Sequence[str] = (DEFAULT_QUEUE,),
        events_maxlen: int = DEFAULT_EVENTS_MAXLEN,
        max_inputs: int = DEFAULT_MAX_INPUTS,
    ) -> None:
        """``pipelines``: those this worker runs (None: every one); it leaves the work of
        other registered pipelines to the workers that run them. ``queues``: the names of
        the queues it takes work from; ``max_inputs``: SLUICE_MAX_INPUTS_PER_JOB (a job's
        total past it, or not a count, is not trusted to split the job)."""
        if not queues:
            raise ValueError("a worker serves at least one queue")
        self.keys, self.worker = keys, worker
        # idle, the worker waits for a token on any of these (`worker.process.arq_worker`)
        self.wakes = [keys.fleet_wake_for(name) for name in queues]
        self._shards = [_ShardCall(k, queues) for k in keys.every_shard()]
        self._aborts_seen = [-1] * len(self._shards)  # per shard, on a sharded layout
        self._next = 0  # the shard the next claim starts at (a sharded layout's turn)
        self._idle = [IdleShard() for _ in self._shards]  # a sharded layout's empty shards
        self._queue_names = orjson.dumps(list(queues))
        self._pipelines = b"*" if pipelines is None else orjson.dumps(sorted(pipelines))
        self.lease_ms = int(lease_s * 1000)
        self.unit_inputs, self.result_ttl_s = unit_inputs, result_ttl_s
        self.events_maxlen, self.max_inputs = events_maxlen, max_inputs
        self._script = redis.register_script(CLAIM)
        self._redis, self._queue_list = redis, list(queues)
        # tokens: a prefix no other worker has, then a number per hand-out
        self._prefix = f"{secrets.token_hex(6)}."
        self._batches = itertools.count()

    async def claim(
        self,
        room: int,
        most: int,
        aborts_since_ms: int,
        cached: Mapping[str, tuple[int, int]] | None = None,
        holding: Iterable[str] = (),
    ) -> Claim:
        """Claim units until their inputs fill ``room`` (at least one unit), at most ``most``
        units; ``cached``: the jobs whose envelope this worker has read, with the run it read
        and the envelope's enqueue time, ms (a later run — a retry — or another job of the
        same id is sent again); ``holding``: the jobs it holds units of
        (their shards are never rested: a cancel of one is heard at once).

        On a sharded layout each shard is one call: from a shard that takes its turn first
        (the next one each claim, so none starves), on to the next while room is left, every
        shard when it only listens for cancels (``most`` 0). A shard found empty is passed
        over for a while (`IdleShard`), until `woken`."""
        if not self.keys.sharded:  # (one shard of a cluster still wakes the fleet's list)
            return await self._claim(self._shards[0], room, most, aborts_since_ms, cached)
        n, start, now = len(self._shards), self._next, time.monotonic()
        self._next = (start + 1) % n
        held = {shard_of(job_id, n) for job_id in holding}
        units: list[Unit] = []
        more, aborted = False, list[str]()
        for i in range(n):
            s = (start + i) % n
            if most > 0 and s not in held and self._idle[s].resting(now):
                continue
            seen = self._aborts_seen[s] if self._aborts_seen[s] >= 0 else aborts_since_ms
            left = max(0, most - len(units))
            got = await self._claim(self._shards[s], room, left, seen, cached)
            self._aborts_seen[s] = got.aborts_seen_ms
            if left > 0:
                self._idle[s].found(bool(got.units or got.more), now)
            units += got.units
            room -= sum(max(1, u.end - u.first) for u in got.units)
            more, aborted = more or got.more, aborted + got.aborted
            if most > 0 and (len(units) >= most or room <= 0):
                more = True
                break
        split = sum(u.units - 1 for u in units if u.index == 0 and u.units > 1 and u.run == 1)
        if split:  # idle workers: units for you (the shard's script woke its own list)
            await push_wake(self._redis, self.wakes, split)
        return Claim(units, more, aborted, max(self._aborts_seen))

    def woken(self) -> None:
        """A wake token came: work was made ready in some shard; the next claim tries every
        shard again."""
        for shard in self._idle:
            shard.found(True, 0.0)

    async def _claim(
        self,
        shard: _ShardCall,
        room: int,
        most: int,
        aborts_since_ms: int,
        cached: Mapping[str, tuple[int, int]] | None,
    ) -> Claim:
        window = min(WINDOW_MAX, 2 * most + 16)
        args: list[EncodableT] = [
            self.lease_ms,
            room,
            most,
            self.keys.script_wake_tokens,
            self.worker,
            f"{self._prefix}{next(self._batches)}.",
            self.unit_inputs,
            aborts_since_ms,
            orjson.dumps(dict(cached or {})),
            self.result_ttl_s,
            window,
            self._pipelines,
            self._queue_names,
            self.events_maxlen,
            self.keys.shards,
            shard.index,
            self.max_inputs,
            *shard.templates,
        ]
        more, flat, refused, aborts, _now = await self._script(keys=shard.keys, args=args)
        for i in range(0, len(refused), 2):
            job_id, error = _text(refused[i]), _text(refused[i + 1])
            log.error("job cannot start, moved to the failed set", job_id=job_id, error=error)
        units = [_unit(flat[i : i + FIELDS]) for i in range(0, len(flat), FIELDS)]
        seen = [int(float(aborts[i + 1])) for i in range(0, len(aborts), 2)]
        return Claim(
            units=units,
            more=bool(more),
            aborted=[_text(aborts[i]) for i in range(0, len(aborts), 2)],
            aborts_seen_ms=max(seen, default=aborts_since_ms),
        )


class IdleShard:
    """How long a shard found empty is passed over by an idle worker's claims, so that one
    waiting for work does not make a call per shard per poll (16 on a cluster): after k
    empty claims in a row, IDLE_FIRST_S x 2^(k-1), at most IDLE_MAX_S. A wake token (an
    enqueue, a retry, a split) ends every rest at once (`Claimer.woken`); work that becomes
    ready without one (a deferred job due, a lapsed lease, a unit's retry backoff) is found
    at most IDLE_MAX_S later by an idle worker. A busy worker's claims find it as they go."""

    __slots__ = ("empty", "until")

    def __init__(self) -> None:
        self.empty, self.until = 0, 0.0

    def resting(self, now: float) -> bool:
        return now < self.until

    def found(self, work: bool, now: float) -> None:
        """After a claim of the shard at ``now``: whether it had work."""
        self.empty = 0 if work else self.empty + 1
        rest = 0.0 if work else min(IDLE_FIRST_S * 2 ** (self.empty - 1), IDLE_MAX_S)
        self.until = now + rest


class _ShardCall:
    """What the claim script is given for one shard: its keys, its key templates."""

    def __init__(self, k: Keys, queues: Sequence[str]) -> None:
        named = [(k.named_queue(name), k.wake_for(name)) for name in queues]
        self.keys = [
            named[0][0],
            k.leases,
            k.running,
            k.failed,
            k.aborts,
            k.refused,
            named[0][1],
            k.shard_pipelines,
            k.events,
            *(key for pair in named[1:] for key in pair),
        ]
        self.templates = KeyTemplates(k.job, k.arq_job, k.inputs, k.results, k.blobs).args
        self.index = k.shard or 0  # its jobs' ids give crc32(id) mod shards == index


def _unit(values: list[bytes | int]) -> Unit:
    """A unit from its FIELDS values, in the order CLAIM returns them."""
    job_id, index, first, end, token, tries, units, total, envelope, *rest = values
    started, run, counted, due, stored = rest
    return Unit(
        job_id=_text(job_id),
        index=int(index),
        first=int(first),
        end=int(end),
        token=_text(token),
        tries=int(tries),
        units=int(units),
        total=int(total),
        envelope=envelope if isinstance(envelope, bytes) else None,
        started_at=float(started),
        run=int(run),
        counted=bool(counted),
        due_ms=int(float(due)),
        stored=int(stored),
    )


def _text(value: object) -> str:
    """A reply value as text; bytes that are not UTF-8 (an id written raw) are shown escaped."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)
