"""The deliveries in Redis: claimed under a lease, settled fenced by that lease.

An ending is queued in ``{ns}:webhooks`` (job id -> when it is due) by the script that ends
the job (`producer.contract.scripts.WEBHOOK`). A claim moves each due entry's score to when
its lease lapses, so no other worker sees it due while this one sends it; the new score is
the claim's token: a settle whose token is no longer the entry's (the lease lapsed and
another worker took it, or the job was retried or deleted) writes nothing. A worker that
dies while sending leaves the entry to lapse and be sent again: at least once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from enum import StrEnum
from typing import NamedTuple

from producer.contract.keys import Keys
from producer.contract.scripts import NOW
from producer.redis.scripts import run_script
from producer.redis.typed import Redis

# KEYS: webhooks, webhook default
# ARGV: lease ms, most deliveries, status hash prefix
# Returns a list of {id, attempt, lease (the token), target URL or '', status hash (flat)}.
# An entry whose job no longer waits for a delivery (expired, deleted, retried) leaves the set,
# and so does one whose keys Redis refuses (a hash of the wrong type, a count that is not a
# number: under pcall, so it never blocks the others).
CLAIM = (
    NOW
    + """
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local default = redis.call('GET', KEYS[2])
local out = {}
local function take(id)
  local status = ARGV[3] .. id
  local f = redis.call('HMGET', status, 'webhook_state', 'callback_url')
  if f[1] ~= 'pending' then
    redis.call('ZREM', KEYS[1], id)
    return
  end
  local attempt = redis.call('HINCRBY', status, 'webhook_attempts', 1)
  local lease = now + tonumber(ARGV[1])
  redis.call('ZADD', KEYS[1], lease, id)
  redis.call('HSET', status, 'webhook_at', now / 1000)
  out[#out + 1] = {id, attempt, lease, f[2] or default or '', redis.call('HGETALL', status)}
end
for _, id in ipairs(due) do
  if not pcall(take, id) then redis.call('ZREM', KEYS[1], id) end
end
return out
"""
)

# KEYS: webhooks, the job's status hash
# ARGV: job id, lease (the claim's token), settled as (delivered, failed or retry), error,
#       retry after ms
# Returns 1 written, 0 not this claim's any more (nothing written).
SETTLE = (
    NOW
    + """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then  -- expired meanwhile: nothing to report to
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
if ARGV[3] == 'retry' then
  redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[5]), ARGV[1])
  redis.call('HSET', KEYS[2], 'webhook_error', ARGV[4])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HSET', KEYS[2], 'webhook_state', ARGV[3], 'webhook_error', ARGV[4])
end
return 1
"""
)


class Settled(StrEnum):
    """How one attempt leaves a delivery."""

    DELIVERED = "delivered"  # done
    FAILED = "failed"  # done, not sent again
    RETRY = "retry"  # due again after a pause


class Claimed(NamedTuple):
    """One delivery this worker holds the lease on."""

    job_id: str
    attempt: int  # 1 for the first POST of this ending
    token: int  # the lease's score: the settle's fence
    url: str  # '' when the job has none and the namespace no default
    fields: dict[str, str]  # the job's status hash


def _sha(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()


def _text(value: bytes | str | int | list[bytes]) -> str:
    assert not isinstance(value, list), value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class DeliveryStore:
    """The worker's side of ``{ns}:webhooks``: claim due deliveries, settle them."""

    def __init__(self, redis: Redis, keys: Keys, lease_ms: int) -> None:
        self.redis, self.keys, self.lease_ms = redis, keys, lease_ms

    async def claim(self, most: int) -> list[Claimed]:
        """Up to ``most`` due deliveries: on a sharded layout, from each shard in turn."""
        claimed: list[Claimed] = []
        for k in self.keys.every_shard():
            if len(claimed) >= most:
                break
            keys = [k.webhooks, k.shard_webhook_default]
            args = [self.lease_ms, most - len(claimed), k.job("")]
            rows = await run_script(self.redis, _sha(CLAIM), CLAIM, keys, args)
            claimed += [_claimed(row) for row in rows]
        return claimed

    async def settle(self, claim: Claimed, settled: Settled, error: str, delay_ms: int) -> bool:
        k = self.keys.for_job(claim.job_id)
        keys = [k.webhooks, k.job(claim.job_id)]
        args = [claim.job_id, claim.token, settled.value, error, delay_ms]
        return bool(await run_script(self.redis, _sha(SETTLE), SETTLE, keys, args))


Row = Sequence[bytes | int | list[bytes]]  # one claim as the CLAIM script returns it


def _claimed(row: Row) -> Claimed:
    job_id, attempt, token, url, flat = row
    assert isinstance(flat, list)
    pairs = [_text(v) for v in flat]
    fields = dict(zip(pairs[::2], pairs[1::2], strict=True))
    return Claimed(_text(job_id), int(_text(attempt)), int(_text(token)), _text(url), fields)
