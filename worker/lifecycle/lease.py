"""Leases on the units this worker holds: check-and-extend, so a worker learns at once that
a unit is no longer its own, and stops it.

One script call a round renews every held unit whose token still holds it, and names the
others: their lease lapsed and another worker took them over, or their job was cancelled,
failed or reset. Between rounds each unit also knows locally how long its lease surely
lasts (from the last round that renewed it): past that — a worker paused by SIGSTOP, a
frozen VM, a partition — the stages stop the unit before anything more is fetched or
written, whether or not the server has given it to another worker yet.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import structlog
from redis.exceptions import RedisError

from producer.contract.keys import Keys, shard_of
from producer.contract.scripts import CHUNKED, HOLDS, NOW
from producer.redis.typed import Redis
from worker.lifecycle.claim import Unit

log = structlog.get_logger("sluice.lease")

# KEYS: leases   ARGV: lease ms, status key prefix, suffix, then (job id, unit, token) per unit
# Returns the places (from 0) of the units whose token no longer holds them.
RENEW = (
    NOW
    + CHUNKED
    + HOLDS
    + """
local expiry = now_ms() + tonumber(ARGV[1])
local renewed, lost = {}, {}
for i = 4, #ARGV, 3 do
  local ok, held = pcall(holds, ARGV[2] .. ARGV[i] .. ARGV[3], 'unit:' .. ARGV[i + 1],
                         ARGV[i + 2])
  if ok and held then
    renewed[#renewed + 1] = expiry
    renewed[#renewed + 1] = ARGV[i] .. '#' .. ARGV[i + 1]
  else
    lost[#lost + 1] = (i - 4) / 3
  end
end
chunked('ZADD', KEYS[1], renewed)
return lost
"""
)


class Holder(Protocol):
    """What holds a unit's lease in the worker: the stages check ``valid_until`` and stop the
    unit past it; ``lose`` stops it now."""

    valid_until: float  # monotonic: the lease surely lasts until then

    def lose(self) -> None: ...


class Lease:
    """One held unit's lease."""

    __slots__ = ("holder", "unit")

    def __init__(self, unit: Unit, holder: Holder) -> None:
        self.unit, self.holder = unit, holder


class Leases:
    def __init__(self, redis: Redis, keys: Keys, lease_s: float) -> None:
        self.redis, self.keys, self.lease_s = redis, keys, lease_s
        # unit member -> lease; the claim adds, the end drops. A unit handed to this worker
        # again replaces its stale attempt's lease, which then drops nothing.
        self.held: dict[str, Lease] = {}
        self._script = redis.register_script(RENEW)
        self._shards = keys.every_shard()
        self._status = [[*k.job("\x00").split("\x00")] for k in self._shards]

    def hold(self, unit: Unit, holder: Holder, claimed_at: float) -> None:
        """Hold a unit claimed by a call sent at ``claimed_at`` (monotonic)."""
        holder.valid_until = claimed_at + self.lease_s
        self.held[unit.member] = Lease(unit, holder)

    def drop(self, unit: Unit) -> None:
        """Stop renewing the unit's lease, if it is still this hand-out's."""
        lease = self.held.get(unit.member)
        if lease is not None and lease.unit.token == unit.token:
            del self.held[unit.member]

    async def run(self) -> None:
        """Renew every held lease each third of its length (at once after a pause)."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            await self.renew()

    async def renew(self) -> None:
        leases = list(self.held.values())
        if not leases:
            return
        if len(self._shards) == 1:
            await self._renew(0, leases)
            return
        groups: dict[int, list[Lease]] = {}  # a sharded layout: one call per shard
        for lease in leases:
            groups.setdefault(shard_of(lease.unit.job_id, len(self._shards)), []).append(lease)
        await asyncio.gather(*(self._renew(s, g) for s, g in groups.items()))

    async def _renew(self, shard: int, leases: list[Lease]) -> None:
        sent = time.monotonic()
        args: list[str | int] = [int(self.lease_s * 1000), *self._status[shard]]
        for lease in leases:
            args += (lease.unit.job_id, lease.unit.index, lease.unit.token)
        try:
            lost = await self._script(keys=[self._shards[shard].leases], args=args)
        except RedisError as exc:
            log.warning("lease renewal failed", error=str(exc), units=len(leases))
            return
        gone = {int(n) for n in lost}
        for n, lease in enumerate(leases):
            if n in gone:
                log.warning(
                    "lease lost: stopping the unit",
                    job_id=lease.unit.job_id,
                    unit=lease.unit.index,
                )
                self.drop(lease.unit)
                lease.holder.lose()
            else:
                lease.holder.valid_until = sent + self.lease_s
