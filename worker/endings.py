"""Ending a job attempt: arq's bookkeeping and Sluice's final status in one script per job,
and the endings of the jobs that end in the same moment sent together, a batch a call.

An attempt ends one of three ways:

- ``finish``: the job is over (complete, failed, or aborted by `cancel`): arq's keys go,
  the job leaves the queue, and the final status is written with its TTLs;
- ``retry``: it runs again later (an unexpected error, with backoff);
- ``hand_back``: it goes back to the queue as it is (shutdown); a drain undoes the try.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from producer.keys import ARQ_ABORT_SET, Keys
from producer.scripts import CHUNKED
from producer.wire import now_ms
from worker.scripts import BatchedScript, Value, refused_pairs
from worker.stages.items import StageCounters

log = structlog.get_logger("sluice.worker")

STOP_WRITE_S = 5.0  # at shutdown, how long endings wait for an unreachable Redis
# Two writers of at most 32 endings a call: while one call runs on the server, the next is
# built and sent, and the claims that the freed slots allow follow sooner. (One writer
# taking all that waited made calls of ~50 endings that alternated with the worker's own
# work; this measured 10-25% more one-input jobs a second on the bench's tiny workload.)
WRITERS = 2
BATCH = 32

# Every ending of a flush in one call; each runs under pcall, so one that Redis refuses
# (say, a key of the wrong type) is reported and the others are written.
# KEYS: queue, abort set, running set, failed set
# ARGV: endings (JSON list), arq result ttl ms, status ttl s, now ms, then per-job key
#       templates as prefix/suffix pairs: arq job, arq in-progress, arq retry, arq result,
#       then the job's own keys (status hash first, spec last)
# An ending: [id, mode, amount, arq result, failed 0/1, spec, fields, counters]; amount is
# the queue score increment (retry) or 1 to undo the try (hand_back); fields and counters
# are flat name/value lists.
# Returns a flat list of (index, error) for the endings Redis refused.
# The shared sets are written once per call, not once per job: the ids leaving the running
# set and the queue are gathered where each job's own commands used to remove them, so a
# job refused halfway leaves them as before; the abort set is looked at only if not empty.
END = (
    CHUNKED
    + """
local t = {}
local aborts = redis.call('ZCARD', KEYS[2]) > 0
local leaving, done = {}, {}
for i = 5, #ARGV, 2 do t[#t + 1] = {ARGV[i], ARGV[i + 1]} end
local function key(n, id) return t[n][1] .. id .. t[n][2] end
-- the counters added to what the hash holds (one HMGET, not an HINCRBYFLOAT each), then
-- the fields, which win where both name one (a complete job's fetched = total)
local function add_counters(status, counters, fields)
  if #counters == 0 then return fields end
  local names, out = {}, {}
  for i = 1, #counters, 2 do names[#names + 1] = counters[i] end
  local old = redis.call('HMGET', status, unpack(names))
  for i = 1, #counters, 2 do
    out[#out + 1] = counters[i]
    out[#out + 1] = (tonumber(old[(i + 1) / 2]) or 0) + tonumber(counters[i + 1])
  end
  for i = 1, #fields do out[#out + 1] = fields[i] end
  return out
end
local function finish(e)
  local id, mode = e[1], e[2]
  leaving[#leaving + 1] = id
  if mode ~= 'finish' then
    redis.call('DEL', key(2, id))
    if mode == 'retry' then redis.call('ZINCRBY', KEYS[1], e[3], id)
    elseif e[3] == 1 then redis.call('DECR', key(3, id)) end
    return
  end
  redis.call('DEL', key(1, id), key(2, id), key(3, id))
  if aborts then redis.call('ZREM', KEYS[2], id) end
  done[#done + 1] = id
  if e[4] ~= '' then redis.call('SET', key(4, id), e[4], 'PX', ARGV[2]) end
  local fields, counters = e[7], e[8]
  if #fields == 0 then return end
  local status = key(5, id)
  redis.call('HSET', status, unpack(add_counters(status, counters, fields)))
  if e[6] ~= '' then redis.call('SET', key(#t, id), e[6]) end
  if e[5] == 1 then redis.call('ZADD', KEYS[4], ARGV[4], id) end
  for n = 5, #t do redis.call('EXPIRE', key(n, id), ARGV[3]) end
end
local refused = {}
for i, e in ipairs(cjson.decode(ARGV[1])) do
  local ok, err = pcall(finish, e)
  if not ok then
    refused[#refused + 1] = i - 1
    refused[#refused + 1] = tostring(err)
  end
end
chunked('SREM', KEYS[3], leaving)
chunked('ZREM', KEYS[1], done)
return refused
"""
)
MARK = "\x00"  # stands for the job id in the key templates


def _flat(values: Mapping[str, str | int | float], out: list[str]) -> list[str]:
    """``out`` extended with name, value, name, value… as strings (the script's HSET args)."""
    for name, value in values.items():
        out += (name, value if value.__class__ is str else repr(value))
    return out


@dataclass(slots=True)
class FinalStatus:
    """What a finished attempt writes to the job's status hash."""

    state: str  # complete | failed | cancelled
    fields: dict[str, str | int | float] = field(default_factory=dict)
    counters: StageCounters | None = None  # stage timings not written yet
    spec: bytes | None = None  # the job as enqueued, kept for `retry` when it failed

    @classmethod
    def failure(
        cls, error: str, pipeline: str | None = None, spec: bytes | None = None
    ) -> FinalStatus:
        """A failed job's status; its spec is kept for `retry`."""
        fields: dict[str, str | int | float] = {"error": error}
        if pipeline:
            fields["pipeline"] = pipeline
        return cls("failed", fields, spec=spec)

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    def summary(self) -> dict[str, object]:
        """The attempt's result as arq stores it (``arq:result:{id}``)."""
        shown = {k: v for k, v in self.fields.items() if k in ("total", "error")}
        return {"state": self.state, **shown}


@dataclass(slots=True)
class _Ending:
    job_id: str
    entry: list[object]  # as the END script reads it
    done: asyncio.Future[None]


class Endings:
    """Writes attempt endings, batched: up to BATCH a script call, WRITERS calls in flight."""

    def __init__(self, redis: Redis, keys: Keys, worker: str, result_ttl_s: int) -> None:
        self.redis, self.keys, self.worker, self.ttl_s = redis, keys, worker, result_ttl_s
        self._waiting: list[_Ending] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._script = BatchedScript(redis, END, "job ending")
        k = keys
        self._keys = [k.queue, ARQ_ABORT_SET, k.running, k.failed]
        templates = (k.arq_job(MARK), k.arq_in_progress(MARK), k.arq_retry(MARK),
                     k.arq_result(MARK), *k.job_keys(MARK))  # fmt: skip
        parts = [part for key in templates for part in key.split(MARK)]
        self._templates: list[Value] = list(parts)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"sluice-endings-{n}") for n in range(WRITERS)
        ]

    async def stop(self) -> None:
        """Write what is waiting, then stop; past STOP_WRITE_S without Redis, leave it: those
        jobs stay queued, and their leases lapse so another worker redoes what is unstored."""
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        if self._waiting:  # all in one call: one wait, at most, for an unreachable Redis
            waiting, self._waiting = self._waiting, []
            await self._flush(waiting, give_up_after_s=STOP_WRITE_S)

    async def finish(self, job_id: str, final: FinalStatus | None, arq_result: bytes) -> None:
        """The job is over; ``final`` is None when its status is already final (aborted)."""
        fields: list[str] = []
        counters: list[str] = []
        if final is not None:
            fields = _flat(final.fields, ["state", final.state])
            fields += ("finished_at", repr(time.time()), "worker", self.worker)
            if final.counters:
                counters = _flat(final.counters.nonzero(), [])
        failed = 1 if final is not None and final.failed else 0
        spec = final.spec.decode() if final is not None and final.spec else ""
        entry: list[object] = [
            job_id,
            "finish",
            0,
            arq_result.decode(),
            failed,
            spec,
            fields,
            counters,
        ]
        await self._send(job_id, entry)

    async def retry(self, job_id: str, score_increment_ms: int) -> None:
        """Run the job again once its score (when it is due) has moved on by the increment."""
        await self._send(job_id, [job_id, "retry", score_increment_ms, "", 0, "", [], []])

    async def hand_back(self, job_id: str, undo_try: bool) -> None:
        """Leave the job queued for any worker; ``undo_try``: this attempt does not count."""
        entry: list[object] = [job_id, "hand_back", 1 if undo_try else 0, "", 0, "", [], []]
        await self._send(job_id, entry)

    async def _send(self, job_id: str, entry: list[object]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(_Ending(job_id, entry, done))
        self._wake.set()
        # the write goes on even if this attempt is cancelled while it waits (that cancels
        # only ``done``: the entry stays waiting, and every waiting entry is sent)
        await done

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
        def refused(exc: ResponseError) -> None:  # the script itself failed
            log.error("cannot write job endings", jobs=len(endings), error=str(exc))

        entries = orjson.dumps([e.entry for e in endings])
        args = [entries, self.ttl_s * 1000, self.ttl_s, now_ms(), *self._templates]
        result = await self._script.run(self._keys, args, refused, give_up_after_s)
        for index, error in refused_pairs(result):
            log.error("cannot write a job's ending", job_id=endings[index].job_id, error=error)
        for ending in endings:
            if not ending.done.done():
                ending.done.set_result(None)
