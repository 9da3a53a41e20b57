"""When ticks fall: intervals on the epoch, cron in a time zone, across daylight-saving
changes, and the ticks a schedule catches up after a gap."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from producer.contract.schedules import MAX_CATCH_UP, Schedule, tick_job_id
from producer.contract.ticks import LATE_S, due_ticks_ms, latest_ticks_ms, next_tick_ms
from producer.contract.validation import check_job_id

PARIS = ZoneInfo("Europe/Paris")


def schedule(**timing: Any) -> Schedule:
    return Schedule(name="s", pipeline="text-stats", inputs=["data:,x"], **timing)


def ms(year: int, month: int, day: int, hour: int, minute: int) -> int:
    """A Paris wall-clock time as a ms epoch."""
    return int(datetime(year, month, day, hour, minute, tzinfo=PARIS).timestamp() * 1000)


def local(tick_ms: int) -> str:
    return datetime.fromtimestamp(tick_ms / 1000, PARIS).isoformat()


def test_interval_ticks_are_multiples_of_the_interval_since_the_epoch() -> None:
    """Every worker computes the same ticks, whenever it started."""
    every = schedule(every_s=10)
    assert next_tick_ms(every, 100_000) == 110_000
    assert next_tick_ms(every, 100_001) == 110_000
    assert next_tick_ms(every, 99_999) == 100_000


def test_cron_is_read_in_its_time_zone() -> None:
    """'0 9 * * *' in Paris is 09:00 Paris time, 08:00 UTC in winter."""
    nine = schedule(cron="0 9 * * *", timezone="Europe/Paris")
    tick = next_tick_ms(nine, ms(2026, 1, 10, 12, 0))
    assert local(tick) == "2026-01-11T09:00:00+01:00"
    utc = datetime.fromtimestamp(tick / 1000, ZoneInfo("UTC"))
    assert utc.hour == 8


def test_a_local_time_that_does_not_exist_fires_at_the_first_one_after() -> None:
    """On 29 March 2026 Paris skips 02:00-03:00: 02:30 fires once, at 03:00, then as usual."""
    half_past_two = schedule(cron="30 2 * * *", timezone="Europe/Paris")
    first = next_tick_ms(half_past_two, ms(2026, 3, 28, 12, 0))
    second = next_tick_ms(half_past_two, first)
    assert [local(first), local(second)] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_a_local_time_that_happens_twice_fires_once_at_the_first() -> None:
    """On 25 October 2026 Paris has 02:30 twice: the schedule fires at the first only."""
    half_past_two = schedule(cron="30 2 * * *", timezone="Europe/Paris")
    first = next_tick_ms(half_past_two, ms(2026, 10, 24, 12, 0))
    second = next_tick_ms(half_past_two, first)
    assert [local(first), local(second)] == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_an_expression_with_a_star_hour_follows_real_time_across_the_change() -> None:
    """'*/30 * * * *' fires every 30 minutes of elapsed time, in both 02:00 hours."""
    half_hourly = schedule(cron="*/30 * * * *", timezone="Europe/Paris")
    tick, seen = ms(2026, 10, 25, 1, 50), []
    for _ in range(5):
        tick = next_tick_ms(half_hourly, tick)
        seen.append(local(tick))
    assert seen == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_missed_skip_fires_only_the_latest_tick_due() -> None:
    """Ticks missed with missed="skip": one job, for the latest; a late one is fired anyway."""
    every = schedule(every_s=10)
    assert due_ticks_ms(every, 100_000, 143_000) == [140_000]  # late (within LATE_S): fired
    assert due_ticks_ms(every, 100_000, 147_000) == [140_000]  # none late: the latest missed
    assert due_ticks_ms(every, 100_000, 99_999) == []
    assert due_ticks_ms(every, 100_000, 100_000) == [100_000]


def test_late_ticks_are_fired_each_whatever_the_rule() -> None:
    """A worker held up a few seconds fires every tick of those seconds: they are late
    (LATE_S), not missed; the ticks before them were missed, and are skipped."""
    every_second = schedule(every_s=1)
    late = list(range(100_000, 100_000 + LATE_S * 1000 + 1, 1000))
    assert due_ticks_ms(every_second, 100_000, late[-1]) == late
    assert due_ticks_ms(every_second, 50_000, late[-1]) == late


def test_missed_all_fires_each_tick_due_up_to_the_cap() -> None:
    """missed="all" fires every tick due, the latest MAX_CATCH_UP when more were missed."""
    every = schedule(every_s=10, missed="all")
    assert due_ticks_ms(every, 100_000, 145_000) == [100_000, 110_000, 120_000, 130_000, 140_000]
    many = due_ticks_ms(every, 0, 10_000_000)
    assert len(many) == MAX_CATCH_UP and many[-1] == 10_000_000


def test_cron_catch_up_walks_the_ticks_as_they_fire_across_a_change() -> None:
    """The ticks missed over the spring change are those fired: 03:00 on the day of it."""
    half_past_two = schedule(cron="30 2 * * *", timezone="Europe/Paris", missed="all")
    found = latest_ticks_ms(half_past_two, ms(2026, 3, 20, 0, 0), ms(2026, 3, 31, 12, 0), 4)
    assert [local(t) for t in found] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_job_ids_name_the_schedule_and_the_tick() -> None:
    """One tick, one id, whichever worker fires it; the namespace in it (hashed if long)."""
    assert tick_job_id("sluice", "nightly", 1_764_921_600_000) == "sched-nightly-1764921600.sluice"
    long = tick_job_id("n" * 64, "s" * 64, 1_764_921_600_000)
    assert len(long) <= 128 and check_job_id(long) == long


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"cron": "0 3 * *"}, "five fields"),
        ({"cron": "0 3 * * * *"}, "five fields"),
        ({"cron": "61 3 * * *"}, "not a valid cron expression"),
        ({"every_s": 0}, "greater than or equal to 1"),
        ({}, "exactly one of cron"),
        ({"cron": "* * * * *", "every_s": 5}, "exactly one of cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "not a time zone"),
        ({"every_s": 5, "timezone": "Europe/Paris"}, "timezone is for cron"),
        ({"every_s": 5, "missed": "some"}, "'skip' or 'all'"),
        ({"every_s": 5, "name": "Has Space"}, "name"),
        ({"every_s": 5, "priority": 10}, "priority"),
        ({"every_s": 5, "queue": "a:b"}, "queue"),
        ({"every_s": 5, "inputs": []}, "inputs"),
        ({"every_s": 5, "trace": {"traceparent": "x"}}, "trace context"),
        ({"every": 5}, "unknown field 'every'; did you mean 'every_s'"),
    ],
)
def test_a_bad_definition_is_refused_naming_what_is_wrong(
    fields: dict[str, Any], words: str
) -> None:
    """Each wrong field is named, in words that say what would be valid."""
    given: dict[str, Any] = {"name": "s", "pipeline": "text-stats", "inputs": ["data:,x"]}
    with pytest.raises(ValidationError, match=words):
        Schedule.model_validate(given | fields)


def test_the_job_spec_carries_the_job_settings() -> None:
    """The job each tick enqueues has the schedule's queue, priority and overrides."""
    spec = schedule(every_s=5, queue="nightly", priority=7, timeout_s=30, max_tries=2).job_spec()
    assert (spec.queue, spec.priority, spec.timeout_s, spec.max_tries) == ("nightly", 7, 30, 2)
    assert spec.inputs == ["data:,x"] and spec.trace is None
