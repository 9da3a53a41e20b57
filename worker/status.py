"""Writes a job's life to its status hash: started, complete, failed."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from producer.keys import Keys
from producer.models import JobState
from producer.wire import now_ms
from worker.stages.items import StageCounters

# A new attempt restarts the live stage counts from what is already stored: items that
# were in flight when an earlier attempt stopped go through the stages again.
# KEYS: status hash, running set   ARGV: job id, then field/value pairs
START = """
if redis.call('HGET', KEYS[1], 'state') == 'cancelled' then return -1 end
local stored = redis.call('HGET', KEYS[1], 'stored') or '0'
redis.call('HSET', KEYS[1], 'fetched', stored, 'transformed', stored, 'error', '',
           unpack(ARGV, 2))
redis.call('PERSIST', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return tonumber(stored)
"""


# Finish a job in one step. KEYS: running set, failed set, then the job's keys (status hash
# first, spec last). ARGV: job id, ttl s, failed "1"/"0", spec or "", now ms, field count,
# field/value pairs, then counter/amount pairs (HINCRBYFLOAT adds integers exactly too).
FINISH = """
local nfields = tonumber(ARGV[6])
local at = 7 + 2 * nfields
for i = at, #ARGV, 2 do redis.call('HINCRBYFLOAT', KEYS[3], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[3], unpack(ARGV, 7, at - 1))
if ARGV[4] ~= '' then redis.call('SET', KEYS[#KEYS], ARGV[4]) end
if ARGV[3] == '1' then redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1]) end
for i = 3, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
redis.call('SREM', KEYS[1], ARGV[1])
return 1
"""


class StatusWriter:
    def __init__(self, redis: Redis, keys: Keys, worker: str, result_ttl_s: int) -> None:
        self.redis, self.keys, self.worker, self.ttl_s = redis, keys, worker, result_ttl_s
        self._start = redis.register_script(START)
        self._finish_script = redis.register_script(FINISH)

    async def started(self, job_id: str, pipeline: str, total: int, attempt: int) -> int:
        """Record the start of an attempt; how many inputs are already stored, -1 if cancelled."""
        fields: dict[str, str | int | float] = {
            "state": JobState.IN_PROGRESS.value,
            "pipeline": pipeline,
            "total": total,
            "started_at": time.time(),
            "finished_at": "",
            "attempts": attempt,
            "worker": self.worker,
        }
        args: list[str | int | float] = [job_id]
        for name, value in fields.items():
            args += [name, value]
        keys = [self.keys.job(job_id), self.keys.running]
        return int(await self._start(keys=keys, args=args))

    async def complete(self, job_id: str, total: int, last: StageCounters) -> None:
        """Record completion, with the stage timings not yet written, in one round trip."""
        await self._finish(
            job_id,
            {"state": JobState.COMPLETE.value, "fetched": total, "transformed": total},
            counters=last,
        )

    async def failed(
        self, job_id: str, error: str, pipeline: str | None = None, spec: bytes | None = None
    ) -> None:
        """Record the failure, keep the job's spec for `retry`, and add it to the failed set."""
        fields: dict[str, str | int | float] = {"state": JobState.FAILED.value, "error": error}
        if pipeline:
            fields["pipeline"] = pipeline
        await self._finish(job_id, fields, spec=spec, failed=True)

    async def _finish(
        self,
        job_id: str,
        fields: dict[str, str | int | float],
        spec: bytes | None = None,
        failed: bool = False,
        counters: StageCounters | None = None,
    ) -> None:
        """One script call: the last stage counts, the final fields, TTLs, the failed set."""
        fields = {**fields, "finished_at": time.time(), "worker": self.worker}
        adds = counters.nonzero() if counters else {}
        keys = [self.keys.running, self.keys.failed, *self.keys.job_keys(job_id)]
        args: list[str | int | float | bytes] = [
            job_id, self.ttl_s, "1" if failed else "0", spec or b"", now_ms(), len(fields),
        ]  # fmt: skip
        for name, value in fields.items():
            args += [name, value]
        for name, amount in adds.items():
            args += [name, amount]
        await self._finish_script(keys=keys, args=args)

    async def left(self, job_id: str) -> None:
        """This worker stopped running the job without finishing it (shutdown, timeout)."""
        await self.redis.srem(self.keys.running, job_id)
