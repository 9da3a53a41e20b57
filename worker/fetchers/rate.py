"""Rate limits held across every worker of a namespace (`worker.rates` has the rules): one
key per limited host or pipeline in Redis, one script call per limited request (more only for
one under two limits that must wait), nothing at all for a request no rule limits.

The script is GCRA (the generic cell rate algorithm) on Redis's clock: each key holds when its
limit's next request may go at the steady pace (its theoretical arrival time, TAT). A request
under one limit *reserves* the next slot, moving the TAT one interval on, and is told how long
to wait for it: it sleeps that long and goes, with no second call. Fairness: such slots are
handed out first come, first served, in the order the calls reach Redis, whichever worker
makes them. A request under two limits (its pipeline's and its host's) goes only when both
have a slot free at the same moment: when one has none, nothing is reserved (a slot held ahead
in one limit would stop its other traffic until then), and it sleeps until the later of the
two is due and asks again. It holds no place in either's line: while requests under one of
the limits alone keep it busy, it waits behind them. A slot reserved by a fetch that is then
dropped (its job cancelled, its worker stopped) goes unused: a limit can only be kept more
strictly than asked, never less.

A fetch's first request pays its pipeline's limit and its host's in one call (`Gate.open`);
each further request of it (a retry, a redirect hop) pays its host's again, as the HTTP
fetcher asks through `before_request`. The time waited is the fetch's *waiting*, counted
apart from its fetching in the stage timings.
"""

from __future__ import annotations

import asyncio
import hashlib
from contextvars import ContextVar
from dataclasses import dataclass

from redis.exceptions import RedisError
from yarl import URL

from producer.contract.keys import Keys
from producer.contract.scripts import NOW
from producer.redis.backoff import Backoff
from producer.redis.scripts import run_script
from producer.redis.typed import Redis
from worker.errors import FetchError
from worker.observe import instrument
from worker.rates import HostRates, RateRule

# Reserve the next slot of the limits a request is under; a key expires once its TAT has
# passed (an idle limit holds nothing, as if it had never been used). One limit: its next
# slot is reserved, however far ahead. Several: their slots are reserved only if every one
# is free now; else none is (a slot reserved ahead in one would leave the others' capacity
# unused until then), and the caller asks again when the longest wait is over.
# KEYS: one key per limit
# ARGV: per key: its interval ms, its burst tolerance ms ((burst - 1) x interval)
# Returns {ms to wait (0: go now), the place from 1 of the limit that set it, 1 if the slot
# is reserved (go after the wait) or 0 if not (ask again after it)}
RATE = (
    NOW
    + """
local now = now_ms()
local go, binding, tats = now, 0, {}
for i = 1, #KEYS do
  tats[i] = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  local allowed = tats[i] - tonumber(ARGV[2 * i])
  if allowed > go then go, binding = allowed, i end
end
if #KEYS > 1 and binding > 0 then return {math.ceil(go - now), binding, 0} end
for i = 1, #KEYS do
  local tat = math.max(tats[i], go) + tonumber(ARGV[2 * i - 1])
  redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.ceil(tat - now))
end
return {math.ceil(go - now), binding, 1}
"""
)
_SHA = hashlib.sha1(RATE.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Limit:
    """A rule as it applies to one host or pipeline: its key in Redis."""

    rule: RateRule
    key: str


class RateLimiter:
    def __init__(
        self, redis: Redis, keys: Keys, rules: list[RateRule], give_up_after_s: float
    ) -> None:
        self.redis, self.keys, self.give_up_after_s = redis, keys, give_up_after_s
        self.hosts = HostRates([rule for rule in rules if rule.kind == "host"])
        self.pipelines = {rule.name: rule for rule in rules if rule.kind == "pipeline"}
        self.enabled = bool(rules)

    def host(self, host: str) -> Limit | None:
        rule = self.hosts.match(host)
        return None if rule is None else Limit(rule, self.keys.rate("host", host.lower()))

    def gate(self, pipeline: str, uri: str) -> Gate | None:
        """The gate of one fetch; None when no limit can apply to it (nothing to pay)."""
        if not self.enabled:
            return None
        rule = self.pipelines.get(pipeline)
        own = None if rule is None else Limit(rule, self.keys.rate("pipeline", pipeline))
        if own is None and not self.hosts:
            return None
        return Gate(self, own, http_host(uri))

    async def take(self, limits: list[Limit]) -> float:
        """Reserve the next slot of ``limits`` and wait for it; the seconds waited."""
        args: list[float] = []
        for limit in limits:
            args += (limit.rule.rate.interval_ms, limit.rule.rate.tolerance_ms)
        keys = [limit.key for limit in limits]
        waited_s, held_by = 0.0, 0  # held_by: the place of the limit it last waited for
        reserved = 0
        while not reserved:
            wait_ms, binding, reserved = await self._call(keys, args)
            if wait_ms > 0:
                await asyncio.sleep(wait_ms / 1000)
                waited_s, held_by = waited_s + wait_ms / 1000, binding
        for place, limit in enumerate(limits, 1):
            rule = limit.rule
            instrument.rate_waited(rule.kind, rule.name, waited_s if place == held_by else 0.0)
        return waited_s

    async def _call(self, keys: list[str], args: list[float]) -> list[int]:
        """The script's answer; Redis unreachable is retried with backoff up to the fetch
        timeout, then fails the fetch (a limit is never skipped)."""
        backoff = Backoff(self.give_up_after_s, first_s=0.05, max_s=1.0)
        while True:
            try:
                return list(await run_script(self.redis, _SHA, RATE, keys, args))
            except RedisError as exc:
                if backoff.expired():
                    raise FetchError(f"cannot reach the rate limits in Redis: {exc}") from None
                await backoff.pause()


class Gate:
    """The limits of one fetch, and the time it waited for them."""

    def __init__(self, limiter: RateLimiter, pipeline: Limit | None, host: str | None) -> None:
        self.limiter, self.pipeline = limiter, pipeline
        self.prepaid = host  # the host whose first request `open` paid for
        self.waited_s = 0.0

    async def open(self) -> None:
        """Pay for the fetch's first request: its pipeline's limit and its host's, at once."""
        host = None if self.prepaid is None else self.limiter.host(self.prepaid)
        if host is None:
            self.prepaid = None
        limits = [limit for limit in (self.pipeline, host) if limit is not None]
        if limits:
            self.waited_s += await self.limiter.take(limits)

    async def request(self, host: str) -> None:
        """Before one request to ``host``: wait for its slot, if a rule limits it."""
        if self.prepaid is not None and host.lower() == self.prepaid:
            self.prepaid = None
            return
        limit = self.limiter.host(host)
        if limit is not None:
            self.waited_s += await self.limiter.take([limit])


CURRENT: ContextVar[Gate | None] = ContextVar("sluice_rate_gate", default=None)


async def before_request(host: str) -> None:
    """Called by a fetcher before each request to ``host``: waits for the host's slot when
    the fetch stage runs this fetch under rate limits (a no-op otherwise)."""
    gate = CURRENT.get()
    if gate is not None:
        await gate.request(host)


def http_host(uri: str) -> str | None:
    """The host of an http(s) URI, lower-case (None for other schemes or a URI that does not
    parse: its fetcher refuses it)."""
    if uri[:5].lower() not in ("http:", "https"):
        return None
    try:
        host = URL(uri).raw_host
    except (ValueError, TypeError):
        return None
    return host.lower() if host else None
