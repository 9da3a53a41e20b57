"""When a schedule's ticks fall: the next one after a time, and the ones missed before now.

Times are ms epochs; every tick is a whole second. An interval's ticks are the multiples of
``every_s`` since the Unix epoch, so every worker computes the same ones whenever it started.
A cron expression is read in the schedule's time zone by cronsim, which follows Debian
cron across daylight-saving changes:

- an expression with a fixed minute and hour (``30 2 * * *``) whose local time does not
  exist that day (the clocks spring forward over it) fires once, at the first local time
  that does exist after it (03:00 when 02:00-03:00 is skipped);
- whose local time happens twice (the clocks fall back) fires once, at the first of them;
- an expression with ``*`` in the minute or hour field (``*/15 * * * *``) follows real
  time: every 15 minutes of elapsed time, so during an hour that happens twice it fires in
  both, and in an hour skipped it fires none.
"""

from __future__ import annotations

from datetime import datetime

from cronsim import CronSim

from producer.contract.schedules import MAX_CATCH_UP, Schedule

# A tick due at most this long ago is late, not missed: the worker that fires it was held up
# (a busy event loop, a slow Redis), and it is fired whatever the schedule's catch-up rule.
LATE_S = 5


def next_tick_ms(schedule: Schedule, after_ms: int) -> int:
    """The first tick strictly after ``after_ms``."""
    if schedule.every_s is not None:
        step = schedule.every_s * 1000
        return (after_ms // step + 1) * step
    assert schedule.cron is not None
    start = datetime.fromtimestamp(after_ms / 1000, schedule.zone)
    return int(next(CronSim(schedule.cron, start)).timestamp()) * 1000


def latest_ticks_ms(schedule: Schedule, since_ms: int, now_ms: int, most: int) -> list[int]:
    """The ticks from ``since_ms`` to ``now_ms`` (both included), oldest first; only the
    latest ``most`` of them when there are more."""
    if since_ms > now_ms or most < 1:
        return []
    if schedule.every_s is not None:
        step = schedule.every_s * 1000
        last = now_ms // step * step
        first = max(-(-since_ms // step) * step, last - (most - 1) * step)
        return list(range(first, last + 1, step))
    # cronsim in reverse from just after now finds where the latest ``most`` ticks begin;
    # the ticks themselves are walked forward from there, as they fire (the two directions
    # may differ by a tick around a DST change)
    assert schedule.cron is not None
    back = CronSim(schedule.cron, datetime.fromtimestamp(now_ms / 1000 + 1, schedule.zone), True)
    start, seen = since_ms, 0
    for when in back:
        tick = int(when.timestamp()) * 1000
        if tick < since_ms:
            break
        seen += tick <= now_ms
        if seen == most:
            start = tick
            break
    found, tick = [], next_tick_ms(schedule, start - 1)
    while tick <= now_ms:
        found.append(tick)
        tick = next_tick_ms(schedule, tick)
    return found[-most:]


def due_ticks_ms(schedule: Schedule, due_ms: int, now_ms: int) -> list[int]:
    """The ticks to fire now for a schedule whose next tick was ``due_ms``: none before it is
    due. A tick at most LATE_S old is late, not missed (a worker's loop held up a moment):
    each is fired. Older ones were missed while no worker ran: with missed="skip" the latest
    of them is fired only if no tick is late; with missed="all" each is (the latest
    MAX_CATCH_UP at most, late ones included)."""
    if due_ms > now_ms:
        return []
    if schedule.missed == "all":
        return latest_ticks_ms(schedule, due_ms, now_ms, MAX_CATCH_UP) or [due_ms]
    late = latest_ticks_ms(schedule, max(due_ms, now_ms - LATE_S * 1000), now_ms, MAX_CATCH_UP)
    return late or latest_ticks_ms(schedule, due_ms, now_ms, 1) or [due_ms]
