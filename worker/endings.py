"""Ending a job attempt: arq's bookkeeping and Sluice's final status in one script per job,
and the endings of every job that ends in the same moment sent in one round trip.

An attempt ends one of three ways:

- ``finish``: the job is over (complete, failed, or aborted by `cancel`): arq's keys go,
  the job leaves the queue, and the final status is written with its TTLs;
- ``retry``: it runs again later (an unexpected error, with backoff);
- ``hand_back``: it goes back to the queue as it is (shutdown); a drain undoes the try.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from producer.keys import ARQ_ABORT_SET, Keys
from producer.wire import now_ms
from worker.scripts import BatchedScript, Value
from worker.stages.items import StageCounters

log = structlog.get_logger("sluice.worker")

STOP_WRITE_S = 5.0  # at shutdown, how long endings wait for an unreachable Redis

# KEYS: queue, abort set, running set, failed set, arq job, arq in-progress, arq retry,
#       arq result, then the job's own keys (status hash first, spec last)
# ARGV: job id, mode, amount (retry: queue score increment; hand_back: 1 to undo the try),
#       arq result or "", its ttl ms, status ttl s, failed "1"/"0", spec or "", now ms,
#       field count, field/value pairs, then counter/amount pairs
END = """
local id, mode = ARGV[1], ARGV[2]
redis.call('SREM', KEYS[3], id)
if mode ~= 'finish' then
  redis.call('DEL', KEYS[6])
  if mode == 'retry' then redis.call('ZINCRBY', KEYS[1], ARGV[3], id)
  elseif ARGV[3] == '1' then redis.call('DECR', KEYS[7]) end
  return 1
end
redis.call('DEL', KEYS[5], KEYS[6], KEYS[7])
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[1], id)
if ARGV[4] ~= '' then redis.call('SET', KEYS[8], ARGV[4], 'PX', ARGV[5]) end
local nfields = tonumber(ARGV[10])
if nfields == 0 then return 1 end
local at = 11 + 2 * nfields
for i = at, #ARGV, 2 do redis.call('HINCRBYFLOAT', KEYS[9], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[9], unpack(ARGV, 11, at - 1))
if ARGV[8] ~= '' then redis.call('SET', KEYS[#KEYS], ARGV[8]) end
if ARGV[7] == '1' then redis.call('ZADD', KEYS[4], ARGV[9], id) end
for i = 9, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[6]) end
return 1
"""


@dataclass(slots=True)
class FinalStatus:
    """What a finished attempt writes to the job's status hash."""

    state: str  # complete | failed | cancelled
    fields: dict[str, str | int | float] = field(default_factory=dict)
    counters: StageCounters | None = None  # stage timings not written yet
    spec: bytes | None = None  # the job as enqueued, kept for `retry` when it failed

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
    args: list[Value]
    done: asyncio.Future[None]


class Endings:
    """Writes attempt endings, batched: one pipelined round trip for all that are waiting."""

    def __init__(self, redis: Redis, keys: Keys, worker: str, result_ttl_s: int) -> None:
        self.redis, self.keys, self.worker, self.ttl_s = redis, keys, worker, result_ttl_s
        self._waiting: list[_Ending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._script = BatchedScript(redis, END, "job ending")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sluice-endings")

    async def stop(self) -> None:
        """Write what is waiting, then stop; past STOP_WRITE_S without Redis, leave it: those
        jobs stay queued, and their leases lapse so another worker redoes what is unstored."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._waiting:
            await self._flush(self._take(), give_up_after_s=STOP_WRITE_S)

    async def finish(self, job_id: str, final: FinalStatus | None, arq_result: bytes) -> None:
        """The job is over; ``final`` is None when its status is already final (aborted)."""
        fields: dict[str, Value] = {}
        adds: dict[str, int | float] = {}
        if final is not None:
            fields = {"state": final.state, **final.fields}
            fields.update(finished_at=time.time(), worker=self.worker)
            adds = final.counters.nonzero() if final.counters else {}
        failed = final is not None and final.failed
        spec = final.spec if final is not None and final.spec else b""
        args: list[Value] = [
            job_id, "finish", 0, arq_result, self.ttl_s * 1000, self.ttl_s,
            "1" if failed else "0", spec, now_ms(), len(fields),
        ]  # fmt: skip
        for name, value in fields.items():
            args += [name, value]
        for name, amount in adds.items():
            args += [name, amount]
        await self._send(job_id, args)

    async def retry(self, job_id: str, score_increment_ms: int) -> None:
        """Run the job again once its score (when it is due) has moved on by the increment."""
        await self._send(job_id, [job_id, "retry", score_increment_ms])

    async def hand_back(self, job_id: str, undo_try: bool) -> None:
        """Leave the job queued for any worker; ``undo_try``: this attempt does not count."""
        await self._send(job_id, [job_id, "hand_back", 1 if undo_try else 0])

    async def _send(self, job_id: str, args: list[Value]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(_Ending(job_id, args, done))
        self._wake.set()
        # the write goes on even if this attempt is cancelled while it waits
        await asyncio.shield(done)

    def _take(self) -> list[_Ending]:
        taken, self._waiting = self._waiting, []
        self._wake.clear()
        return taken

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await self._flush(self._take())

    def _keys(self, job_id: str) -> list[str]:
        k = self.keys
        return [
            k.queue, ARQ_ABORT_SET, k.running, k.failed, k.arq_job(job_id),
            k.arq_in_progress(job_id), k.arq_retry(job_id), k.arq_result(job_id),
            *k.job_keys(job_id),
        ]  # fmt: skip

    async def _flush(self, endings: list[_Ending], give_up_after_s: float | None = None) -> None:
        def refused(i: int, exc: ResponseError) -> None:
            log.error("cannot write a job's ending", job_id=endings[i].job_id, error=str(exc))

        calls = [(self._keys(e.job_id), e.args) for e in endings]
        await self._script.run(calls, refused, give_up_after_s)
        for ending in endings:
            if not ending.done.done():
                ending.done.set_result(None)
