"""Claiming jobs: every due job a poll found, taken and started in one Lua call.

arq spends four round trips per job to take it (WATCH/MULTI on its in-progress key) and
one more to read it; Sluice's status hash needs another to say it started. One script does
all of that for every job of a poll, so the per-job cost of taking work stays on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from producer.keys import (
    ARQ_ABORT_SET,
    ARQ_IN_PROGRESS_PREFIX,
    ARQ_JOB_PREFIX,
    ARQ_RETRY_PREFIX,
    Keys,
)
from producer.scripts import CHUNKED
from producer.wire import now_ms

log = structlog.get_logger("sluice.worker")

# arq keeps its try counter this long (arq.worker: 88400 s)
RETRY_KEY_TTL_S = 88_400

# Take up to ARGV[3] due jobs from the front of the queue, looking at no more than ARGV[4]
# entries (the front holds jobs other workers run: they stay queued until they finish).
# For each: claim it if nobody holds it, read its envelope, count the try, mark its status
# started. A job that is cancelled, aborted or whose envelope expired is dropped from the
# queue instead (as arq does).
# KEYS: queue, abort set, running set, failed set
# ARGV: now ms, lease ms, how many, how far to look, now s, worker, then prefixes: status
#       hash, arq job, arq in-progress, arq retry; retry key ttl s
# Returns {more, flat list of (id, score, envelope, try, stored, has total, counted) per
# claimed job, flat list of (id, error) per job refused}; more = 1 when it stopped at ARGV[3]
# with due jobs maybe left; counted = 1 when an earlier attempt wrote stage counters.
# The running set gets every claimed id in one SADD; the abort set (arq's, shared by every
# namespace) is looked at per job only when it is not empty.
CLAIM = (
    CHUNKED
    + """
local out, refused, count, seen, started = {}, {}, 0, 0, {}
local aborts = redis.call('ZCARD', KEYS[2]) > 0
local limit, reach = tonumber(ARGV[3]), tonumber(ARGV[4])
local status_p, job_p, held_p, try_p = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local function take(id, score)
  if not redis.call('SET', held_p .. id, '1', 'NX', 'PX', ARGV[2]) then return end
  local status = status_p .. id
  local envelope = redis.call('GET', job_p .. id)
  local aborted = aborts and redis.call('ZREM', KEYS[2], id) == 1
  local known = redis.call('HMGET', status, 'state', 'stored', 'total', 'fetch_count')
  local state = known[1]
  if not envelope or aborted or state == 'cancelled' then
    redis.call('DEL', held_p .. id, try_p .. id, job_p .. id)
    redis.call('ZREM', KEYS[1], id)
    return
  end
  local try = redis.call('INCR', try_p .. id)
  redis.call('EXPIRE', try_p .. id, ARGV[11])
  local stored = known[2] or '0'
  local has_total = known[3] and 1 or 0
  redis.call('HSET', status, 'state', 'in_progress', 'started_at', ARGV[5],
             'finished_at', '', 'attempts', try, 'worker', ARGV[6],
             'fetched', stored, 'transformed', stored, 'error', '')
  redis.call('PERSIST', status)
  started[#started + 1] = id
  count = count + 1
  local n = #out
  out[n + 1], out[n + 2], out[n + 3] = id, score, envelope
  out[n + 4], out[n + 5], out[n + 6] = try, tonumber(stored), has_total
  out[n + 7] = known[4] and 1 or 0
end
while count < limit and seen < reach do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES',
                         'LIMIT', seen, math.min(256, reach - seen))
  if #ids == 0 then break end
  seen = seen + #ids / 2
  for i = 1, #ids, 2 do
    if count >= limit then break end
    local ok, err = pcall(take, ids[i], ids[i + 1])
    if not ok then
      -- one of its keys is unusable (a wrong type): it fails alone, into the failed set
      redis.call('ZREM', KEYS[1], ids[i])
      redis.call('ZADD', KEYS[4], ARGV[1], ids[i])
      redis.call('DEL', held_p .. ids[i])
      refused[#refused + 1] = ids[i]
      refused[#refused + 1] = tostring(err)
    end
  end
end
chunked('SADD', KEYS[3], started)
return {count >= limit and 1 or 0, out, refused}
"""
)
FIELDS = 7


@dataclass(frozen=True, slots=True)
class Claimed:
    """One job this worker now holds, with what the claim read of it."""

    job_id: str
    score: int  # when it was due (ms epoch)
    envelope: bytes  # arq's job envelope, JSON
    job_try: int  # this attempt's number, counted by the claim
    stored: int  # inputs that already have a record (an earlier attempt stored them)
    has_total: bool  # the status hash knows the job's pipeline and total (enqueued by a Client)
    counted: bool = False  # an earlier attempt wrote stage counters to the status hash


class Claimer:
    def __init__(self, redis: Any, keys: Keys, worker: str, lease_s: float) -> None:
        self.keys, self.worker = keys, worker
        self.lease_ms = int(lease_s * 1000)
        self._script = redis.register_script(CLAIM)

    async def claim(self, limit: int, reach: int) -> tuple[list[Claimed], bool]:
        """Claim up to ``limit`` due jobs among the first ``reach`` of the queue; and whether
        it stopped at the limit (more may be due)."""
        now = now_ms()
        args = [
            now, self.lease_ms, limit, reach, now / 1000, self.worker, self.keys.job(""),
            ARQ_JOB_PREFIX, ARQ_IN_PROGRESS_PREFIX, ARQ_RETRY_PREFIX, RETRY_KEY_TTL_S,
        ]  # fmt: skip
        keys = [self.keys.queue, ARQ_ABORT_SET, self.keys.running, self.keys.failed]
        more, flat, refused = await self._script(keys=keys, args=args)
        for i in range(0, len(refused), 2):
            job_id, error = refused[i].decode(), refused[i + 1].decode("utf-8", "replace")
            log.error("job cannot start, moved to the failed set", job_id=job_id, error=error)
        claimed = [
            Claimed(
                job_id=flat[i].decode(),
                score=int(float(flat[i + 1])),
                envelope=flat[i + 2],
                job_try=int(flat[i + 3]),
                stored=int(flat[i + 4]),
                has_total=bool(flat[i + 5]),
                counted=bool(flat[i + 6]),
            )
            for i in range(0, len(flat), FIELDS)
        ]
        return claimed, bool(more)
