"""Stage 3: write item records to Redis in batches, one round trip per batch.

Each record is written with HSETNX, so an input already stored (by an earlier attempt
at the same job) keeps its first record and is not counted twice. A unit's last batch is not
written here: its records go with the unit's ending (`worker.lifecycle.endings`), one script
call and one fence read for both (Redis ~7 µs less a one-input job), unless writes wait for
replicas (SLUICE_REDIS_WAIT_REPLICAS), which endings do not.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import orjson
import structlog
from redis.exceptions import ResponseError

from producer.contract.keys import Keys, shard_of
from producer.contract.scripts import HOLDS
from producer.redis.failover import ReplicaWait
from producer.redis.scripts import BatchedScript, Value, refused_pairs
from producer.redis.typed import Redis
from worker.observe import instrument
from worker.stages.items import Item, JobRun

log = structlog.get_logger("sluice.store", stage="store")

# The records of every unit in a batch in one call; each unit's run under pcall, so one whose
# keys Redis refuses (say, a key of the wrong type) fails alone and the others are written.
# Each unit's records are written only while its token holds it (fencing: a worker whose
# lease lapsed must not write for a unit another worker now runs, nor for an ended job).
# KEYS: per unit: results hash, blobs hash, status hash
# ARGV: per unit: its lease field, its token, how many records, then that many (index,
#       record JSON, "1" ok | "0" failed, blob or "")
# Returns a flat list of (unit's place in KEYS from 0, error) for the units Redis refused;
# the error is "lost" for a unit its token no longer holds.
# The records ARGV[first..last], 4 arguments each (index, record JSON, "1" ok | "0" failed,
# blob or ""), written once (HSETNX); returns how many were new, how many of those failed,
# and whether a blob was written. The END script writes a unit's last records with it too.
WRITE_RECORDS = """
-- ``blobs``: the blobs hash's key, or a function that builds it (called once a record has a
-- blob: most have none)
local function write_records(results, blobs, first, last)
  local stored, failed, blob = 0, 0, false
  for i = first, last, 4 do
    if redis.call('HSETNX', results, ARGV[i], ARGV[i + 1]) == 1 then
      stored = stored + 1
      if ARGV[i + 2] == '0' then failed = failed + 1 end
      if ARGV[i + 3] ~= '' then
        if type(blobs) == 'function' then blobs = blobs() end
        redis.call('HSET', blobs, ARGV[i], ARGV[i + 3])
        blob = true
      end
    end
  end
  return stored, failed, blob
end
"""
STORE = (
    HOLDS
    + WRITE_RECORDS
    + """
local function store(results, blobs, status, a, first, last)
  if not holds(status, ARGV[a], ARGV[a + 1]) then return 'lost' end
  local stored, failed, blob = write_records(results, blobs, first, last)
  -- the ending sets a TTL on the blobs hash only when the job has one
  if blob then redis.call('HSET', status, 'blobs', 1) end
  if stored > 0 then redis.call('HINCRBY', status, 'stored', stored) end
  if failed > 0 then redis.call('HINCRBY', status, 'failed', failed) end
end
local refused, a = {}, 1
for j = 0, #KEYS / 3 - 1 do
  local n = tonumber(ARGV[a + 2])
  local ok, err = pcall(store, KEYS[3 * j + 1], KEYS[3 * j + 2], KEYS[3 * j + 3], a,
                        a + 3, a + 2 + 4 * n)
  if not ok or err then
    refused[#refused + 1] = j
    refused[#refused + 1] = ok and err or tostring(err)
  end
  a = a + 3 + 4 * n
end
return refused
"""
)
LOST = "lost"

WRITERS = 2

Call = tuple[JobRun, list[Item], list[bytes | str]]


def encode_record(item: Item) -> bytes:
    record: dict[str, object] = {"index": item.index, "input": item.uri, "ok": item.ok}
    if item.ok:
        record["result"] = orjson.Fragment(item.result_json or b"{}")
    else:
        record["error"] = item.error
    if item.blob is not None:
        record["blob"] = item.blob_ext or "bin"
    timings = {"fetch_s": round(item.fetch_s, 6), "transform_s": round(item.transform_s, 6)}
    if item.rate_wait_s:  # waited for a rate limit's slot (not in fetch_s)
        timings["rate_wait_s"] = round(item.rate_wait_s, 6)
    record["timings"] = timings
    return orjson.dumps(record)


def _finished(run: JobRun, items: list[Item], store_s: float) -> None:
    ok = sum(item.ok for item in items)
    instrument.stored(run.pipeline.name, ok, len(items) - ok)
    run.counters.store_count += len(items)
    run.counters.store_s += store_s
    run.items_finished(len(items))


class StoreStage:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        inbox: asyncio.Queue[Item],
        batch_size: int,
        wait: ReplicaWait | None = None,  # SLUICE_REDIS_WAIT_REPLICAS: done once replicas have it
    ):
        self.redis, self.keys, self.inbox = redis, keys, inbox
        self.batch_size = batch_size
        self._script = BatchedScript(redis, STORE, "store", wait)
        # a unit's last records ride with its ending, which does not wait for replicas
        self.last_with_ending = wait is None

    async def run(self) -> None:
        """Two writers, so one batch is built while the other is on the wire."""
        async with asyncio.TaskGroup() as group:
            for _ in range(WRITERS):
                group.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            batch = [await self.inbox.get()]
            while len(batch) < self.batch_size and not self.inbox.empty():
                batch.append(self.inbox.get_nowait())
            await self._store(batch)

    async def _store(self, batch: list[Item]) -> None:
        by_run: dict[JobRun, list[Item]] = defaultdict(list)
        for item in batch:
            if item.run.stopped():  # a stopped job's inputs are redone or dropped, not stored
                item.run.items_finished(1)
                continue
            by_run[item.run].append(item)
        calls: list[Call] = []
        for run, items in by_run.items():
            if self.last_with_ending and run.ends_with(len(items)):
                # its ending writes them (their time is the ending's, not in store_s)
                run.last_records = self._args(items)
                _finished(run, items, 0.0)
            else:
                calls.append((run, items, self._args(items)))
        if not calls:
            return
        start = time.perf_counter()
        await self._write(calls)
        elapsed = time.perf_counter() - start
        instrument.store_batch(elapsed)
        for run, items, _ in calls:
            _finished(run, items, elapsed * len(items) / len(batch))

    @staticmethod
    def _args(items: list[Item]) -> list[bytes | str]:
        args: list[bytes | str] = []
        for item in items:
            args += [
                str(item.index),
                encode_record(item),
                "1" if item.ok else "0",
                item.blob or b"",
            ]
        return args

    def _keys(self, run: JobRun) -> list[str]:
        return [
            self.keys.results(run.job_id),
            self.keys.blobs(run.job_id),
            self.keys.job(run.job_id),
        ]

    async def _write(self, calls: list[Call]) -> None:
        if not self.keys.sharded:
            await self._write_shard(calls)
            return
        groups: dict[int, list[Call]] = defaultdict(list)  # one call per shard
        for call in calls:
            groups[shard_of(call[0].job_id, self.keys.shards)].append(call)
        await asyncio.gather(*(self._write_shard(group) for group in groups.values()))

    async def _write_shard(self, calls: list[Call]) -> None:
        """One script call for the whole batch (of one shard). A command error (e.g. a job's
        key holds the wrong type) fails only the job at fault."""

        def refuse(run: JobRun, error: str) -> None:
            if error == LOST:
                log.warning("lease lost: records not stored", job_id=run.job_id)
                run.lose()
                return
            log.warning("cannot store a job's records", job_id=run.job_id, error=error)
            run.error = f"cannot store results: {error}"

        def failed(exc: ResponseError) -> None:  # the script itself failed
            for run, _items, _args in calls:
                refuse(run, str(exc))

        keys: list[str] = []
        args: list[Value] = []
        for run, items, run_args in calls:
            keys += self._keys(run)
            args += [run.lease_field, run.token, len(items), *run_args]
        result = await self._script.run(keys, args, failed)
        for index, error in refused_pairs(result):
            refuse(calls[index][0], error)
