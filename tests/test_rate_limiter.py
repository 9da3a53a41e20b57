"""The rate limiter's GCRA script on the real server, and the rules it is given: a burst then
the steady pace, one budget shared by every caller, keys that vanish when idle."""

from __future__ import annotations

import asyncio
import time

import pytest

from producer.contract.errors import ConfigError
from producer.contract.keys import Keys
from producer.contract.models import JobState, JobStatus, StageTiming
from producer.redis.typed import Redis
from tests.support.scrape import wait_until
from tests.support.servers import Server
from worker.fetchers.rate import RATE, Limit, RateLimiter, http_host
from worker.rates import HostRates, Rate, RateRule, parse_rules
from worker.settings import load_worker_config


def limiter(redis: Redis, namespace: str, rule: str, kind: str = "host") -> RateLimiter:
    rules = parse_rules([rule], "host" if kind == "host" else "pipeline")
    return RateLimiter(redis, Keys(namespace), rules, give_up_after_s=5.0)


async def reserve(rates: RateLimiter, host: str) -> int:
    """One call of the script for ``host``: the ms it says to wait (without waiting)."""
    limit = rates.host(host)
    assert limit is not None
    rate = limit.rule.rate
    wait_ms, _, reserved = await rates.redis.evalsha(
        await rates.redis.script_load(RATE), 1, limit.key, rate.interval_ms, rate.tolerance_ms
    )
    assert reserved == 1  # one limit: its slot is always reserved
    return int(wait_ms)


async def test_a_burst_goes_at_once_then_the_steady_rate(redis: Redis, namespace: str) -> None:
    """10/s with a burst of 3: three slots now, then one every 100 ms, each reserved in turn."""
    rates = limiter(redis, namespace, "a.example=10:3")
    waits = [await reserve(rates, "a.example") for _ in range(6)]
    assert waits[:3] == [0, 0, 0]
    # each later call is given the next slot; a few ms pass between the calls
    for n, wait in enumerate(waits[3:], 1):
        assert n * 100 - 50 < wait <= n * 100, waits


async def test_two_callers_share_one_budget(server: Server, namespace: str) -> None:
    """Two connections (as two workers) calling at once are given one sequence of slots:
    40 calls at 100/s take 400 ms of slots between them, not 200 ms each."""
    first, second = Redis.from_url(server.url), Redis.from_url(server.url)
    start = time.monotonic()
    slots: list[float] = []  # ms from the start to each slot given, at least (sent + wait)
    try:
        a, b = limiter(first, namespace, "shared.example=100"), limiter(second, namespace, "*=100")

        async def calls(rates: RateLimiter) -> list[int]:
            waits = []
            for _ in range(20):
                sent = (time.monotonic() - start) * 1000
                waits.append(await reserve(rates, "shared.example"))
                slots.append(sent + waits[-1])
            return waits

        waits = [w for ws in await asyncio.gather(calls(a), calls(b)) for w in ws]
    finally:
        await first.aclose()
        await second.aclose()
    assert waits.count(0) == 1  # a burst of 1: only the very first goes at once
    # the last of 40 slots 10 ms apart; counted from the start, not as the wait left when it
    # was asked for, so calls slowed by a busy machine (each a little later) still add up
    assert max(slots) >= 390 - 60, sorted(waits)


async def test_an_idle_limit_leaves_no_key(redis: Redis, namespace: str) -> None:
    """The key lives only until its next slot is due: then it is as if never used."""
    rates = limiter(redis, namespace, "ttl.example=20")
    await reserve(rates, "ttl.example")
    key = Keys(namespace).rate("host", "ttl.example")
    assert 0 < await redis.pttl(key) <= 50

    async def gone() -> bool:
        return not await redis.exists(key)

    await wait_until(gone, timeout_s=2)


async def test_take_waits_for_the_slot_and_reports_it(redis: Redis, namespace: str) -> None:
    """`take` sleeps for its reserved slot and says how long; a pipeline has its own key."""
    rates = limiter(redis, namespace, "text-stats=5", kind="pipeline")
    own = rates.gate("text-stats", "data:,x")
    assert own is not None and own.pipeline is not None
    assert rates.gate("other", "data:,x") is None  # nothing can limit it: no gate at all
    started = time.monotonic()
    assert await rates.take([own.pipeline]) == 0
    waited = await rates.take([own.pipeline])
    assert 0.1 < waited <= 0.2 and time.monotonic() - started >= waited


def test_hosts_match_exactly_then_by_the_longest_domain_then_any() -> None:
    hosts = HostRates(
        parse_rules(["a.example.org=1", "*.example.org=2", "*.b.example.org=3"], "host")
    )
    assert hosts.match("A.example.org.") == RateRule("host", "a.example.org", Rate(1))
    assert hosts.match("x.b.example.org") == RateRule("host", "*.b.example.org", Rate(3))
    assert hosts.match("c.example.org") == RateRule("host", "*.example.org", Rate(2))
    assert hosts.match("example.org") is None and hosts.match("other.net") is None
    assert HostRates(parse_rules(["*=9:4"], "host")).match("x.y") == RateRule(
        "host", "*", Rate(9, 4)
    )


def test_the_host_of_an_input_is_read_for_http_only() -> None:
    assert http_host("HTTPS://API.Example.com:8443/x?y") == "api.example.com"
    assert http_host("http://[::1]:80/") == "::1"
    assert http_host("data:,http://a.b") is None and http_host("http://") is None


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("fetch_rates", "api.example.com", "name=rate"),
        ("fetch_rates", "api.example.com=0", "must be > 0"),
        ("fetch_rates", "api.example.com=fast", "requests per second"),
        ("fetch_rates", "a.com=5:0", "burst must be"),
        # a slot's ms past 64 bits (or past a year): Redis refused the limit's key, and every
        # fetch under it waited, retrying, its job never ending
        ("fetch_rates", "a.com=1e-300", "within a year (at least burst / 31536000 per s"),
        ("pipeline_rates", "text-stats=0.001:100000", "fill the burst within a year"),
        ("fetch_rates", "a.com:443=5", "not a host"),
        ("fetch_rates", "a.com=1,A.com=2", "named twice"),
        ("pipeline_rates", "Thumb Nail=5", "not a pipeline name"),
    ],
)
def test_a_bad_rate_setting_names_its_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_worker_config(_env_file=None, **{variable: value})
    assert f"SLUICE_{variable.upper()}" in str(caught.value) and says in str(caught.value)


def test_waiting_for_rate_limits_can_be_the_bottleneck() -> None:
    """Fetch slots mostly spent waiting for their rate slot: the bottleneck is the limit,
    and the fetch stage's own time does not include the waiting."""
    stages = {
        "fetch": StageTiming(count=40, total_s=0.4, slot_s=8 * 4.0),
        "transform": StageTiming(count=40, total_s=0.2, slot_s=2 * 4.0),
        "store": StageTiming(count=40, total_s=0.1, slot_s=2 * 4.0),
    }
    limited = JobStatus(
        job_id="j", state=JobState.COMPLETE, stages=stages, rate_wait_count=39, rate_wait_s=20.0
    )
    assert limited.bottleneck == "rate_limit"
    assert limited.rate_wait.utilisation == 20.0 / 32
    assert limited.as_dict()["rate_wait_s"] == 20.0
    briefly = limited.model_copy(update={"rate_wait_s": 0.5})
    assert briefly.bottleneck == "transform"


async def test_each_request_of_a_fetch_pays_its_host(redis: Redis, namespace: str) -> None:
    """The first request was paid for with the fetch's gate; a retry or a redirect hop to a
    limited host pays again, and a hop to a host no rule names pays nothing."""
    rates = limiter(redis, namespace, "a.example=10")
    gate = rates.gate("text-stats", "http://A.example/x")
    assert gate is not None
    await gate.open()
    await gate.request("a.example")  # the first request: paid by open
    assert gate.waited_s == 0
    await gate.request("free.example")
    assert gate.waited_s == 0
    await gate.request("a.example")  # a retry: the next slot, 100 ms on
    assert 0.05 < gate.waited_s <= 0.1


async def test_two_limits_reserve_only_when_both_are_free(redis: Redis, namespace: str) -> None:
    """A fetch under its pipeline's limit and a busy host's reserves neither while the host
    has no slot (the pipeline's other fetches are not held up), then both at once."""
    rates = RateLimiter(
        redis,
        Keys(namespace),
        parse_rules(["busy.example=10"], "host") + parse_rules(["text-stats=1"], "pipeline"),
        give_up_after_s=5.0,
    )
    await rates.take([host_limit(rates, "busy.example")])  # the host's slot for now is gone
    gate = rates.gate("text-stats", "http://busy.example/x")
    assert gate is not None and gate.pipeline is not None
    host = host_limit(rates, "busy.example")
    wait_ms, binding, reserved = await rates.redis.evalsha(
        await rates.redis.script_load(RATE), 2, gate.pipeline.key, host.key, 1000, 0, 100, 0
    )
    assert (binding, reserved) == (2, 0) and 0 < wait_ms <= 100
    assert not await redis.exists(gate.pipeline.key)  # nothing reserved in the pipeline
    await gate.open()  # waits for the host's next slot, then takes both
    assert 0.05 < gate.waited_s <= 0.3
    assert await redis.exists(gate.pipeline.key)


def host_limit(rates: RateLimiter, host: str) -> Limit:
    limit = rates.host(host)
    assert limit is not None
    return limit
