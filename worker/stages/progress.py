"""Writes each running job's stage progress to its status hash a few times a second.

Counting happens in memory on the hot path; one script call per tick carries it to Redis,
so `sluice watch` sees every stage move without a Redis call per item. A run is first
written at its second tick: a job over sooner (most small jobs) has its counters written
once, with its ending, and never costs a progress write. Each unit's counts are added only
while its token holds it (`producer.contract.scripts.HOLDS`): a worker that lost a unit adds
nothing. Each write adds a "progress" event with the job's counts to the event stream
(`producer.contract.events`), so progress events come at this same pace, and not at all for
a job over by its second tick.
"""

from __future__ import annotations

import asyncio

import structlog
from redis.exceptions import RedisError

from producer.contract.events import DEFAULT_EVENTS_MAXLEN
from producer.contract.keys import Keys, shard_of
from producer.contract.scripts import EMIT, HOLDS
from producer.redis.failover import failover_code
from producer.redis.scripts import refused_pairs
from producer.redis.typed import Redis
from worker.stages.items import JobRun, StageCounters
from worker.stages.store import LOST

log = structlog.get_logger("sluice.progress")

# KEYS: events, then per run: its job's status hash
# ARGV: events kept (SLUICE_EVENTS_MAXLEN), then per run: its lease field, its token, how many
#       counters, then (name, delta) per counter
# Returns a flat list of (place from 0, error) for the runs not written: the error is "lost"
# for a run whose token no longer holds its unit, else what Redis said.
PROGRESS = (
    HOLDS
    + EMIT
    + """
events_to(KEYS[1], ARGV[1])
local COUNTS = {'fetched', 'transformed', 'stored', 'failed', 'total', 'queue', 'pipeline'}
local function add(status, a, n)
  if not holds(status, ARGV[a], ARGV[a + 1]) then return 'lost' end
  for i = a + 3, a + 1 + 2 * n, 2 do
    if string.sub(ARGV[i], -2) == '_s' then
      redis.call('HINCRBYFLOAT', status, ARGV[i], ARGV[i + 1])
    else
      redis.call('HINCRBY', status, ARGV[i], ARGV[i + 1])
    end
  end
  if events_kept > 0 then
    local c = redis.call('HMGET', status, unpack(COUNTS))
    emit(string.match(status, '^.-:job:(.*)$'), 'progress', c[6], c[7],
         {'fetched', c[1] or 0, 'transformed', c[2] or 0, 'stored', c[3] or 0,
          'failed', c[4] or 0, 'total', c[5] or 0})
  end
end
local refused, a = {}, 2
for j = 2, #KEYS do
  local n = tonumber(ARGV[a + 2])
  local ok, err = pcall(add, KEYS[j], a, n)
  if not ok or err then
    refused[#refused + 1] = j - 2
    refused[#refused + 1] = ok and err or tostring(err)
  end
  a = a + 3 + 2 * n
end
return refused
"""
)


class ProgressWriter:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        interval_s: float = 0.25,
        events_maxlen: int = DEFAULT_EVENTS_MAXLEN,
    ) -> None:
        self.redis, self.keys, self.interval_s = redis, keys, interval_s
        self.events_maxlen = events_maxlen
        self.runs: set[JobRun] = set()
        self._script = redis.register_script(PROGRESS)
        self._writing: list[tuple[set[JobRun], asyncio.Event]] = []  # writes on the wire

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            due = []
            for run in self.runs:
                run.ticks += 1
                if run.ticks > 1:
                    due.append(run)
            await self.flush(due)

    async def settled(self, run: JobRun) -> None:
        """Wait for the progress writes of ``run`` already on their way: its ending sets
        counts outright, and an increment landing after it would count twice."""
        for runs, written in list(self._writing):
            if run in runs:
                await written.wait()

    async def flush(self, runs: list[JobRun]) -> None:
        for run in runs:
            run.account()
        pending = [(run, run.counters.take()) for run in runs if run.counters]
        if not pending:
            return
        writing = ({run for run, _ in pending}, asyncio.Event())
        self._writing.append(writing)
        try:
            if not self.keys.sharded:
                await self._send(self.keys, pending)
            else:  # one call per shard
                groups: dict[int, list[tuple[JobRun, StageCounters]]] = {}
                for run, delta in pending:
                    groups.setdefault(shard_of(run.job_id, self.keys.shards), []).append(
                        (run, delta)
                    )
                sends = (self._send(self.keys.shard_keys(s), g) for s, g in groups.items())
                await asyncio.gather(*sends)
        finally:
            self._writing.remove(writing)
            writing[1].set()

    async def _send(self, k: Keys, pending: list[tuple[JobRun, StageCounters]]) -> None:
        keys: list[str] = [k.events]
        args: list[str | int | float] = [self.events_maxlen]
        for run, delta in pending:
            counts = delta.nonzero()
            keys.append(k.job(run.job_id))
            args += [run.lease_field, run.token, len(counts)]
            for name, value in counts.items():
                args += (name, value)
            run.counters_written = True
        try:
            refused = refused_pairs(await self._script(keys=keys, args=args))
        except RedisError as exc:
            for run, delta in pending:  # keep the deltas for the next tick
                run.counters.add(delta)
            log.warning("progress write failed", error=str(exc))
        else:
            for n, error in refused:
                run, delta = pending[n]
                if failover_code(error):  # a replica refused it: the next tick writes it
                    run.counters.add(delta)
                else:
                    refuse(run, error)


def refuse(run: JobRun, error: str) -> None:
    """A run whose progress Redis would not take: its lease is lost, or its keys are broken."""
    if error == LOST:
        log.warning("lease lost: progress not written", job_id=run.job_id)
        run.lose()
    else:
        log.warning("cannot write a job's progress", job_id=run.job_id, error=error)
        run.error = f"cannot write progress: {error}"
