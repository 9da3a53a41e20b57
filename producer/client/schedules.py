"""Reading the published schedules (`Client.schedules`) and firing one now
(`Client.run_schedule`)."""

from __future__ import annotations

import uuid

from producer.client.inspect import read_status
from producer.client.stored_ids import decode_fields
from producer.contract.errors import SluiceError
from producer.contract.keys import Keys
from producer.contract.schedule_info import ScheduleInfo
from producer.contract.schedule_scripts import ScheduleField
from producer.contract.schedules import Schedule
from producer.contract.wire import loads, now_ms
from producer.redis.typed import Redis


async def read_schedules(redis: Redis, keys: Keys) -> list[ScheduleInfo]:
    """Every published schedule by name, with its last job's state."""
    entries = await redis.zrange(keys.schedules, 0, -1, withscores=True)
    names = sorted((raw.decode("utf-8", "replace"), score) for raw, score in entries)
    async with redis.pipeline(transaction=False) as pipe:
        for name, _ in names:
            pipe.hgetall(keys.schedule(name))
        hashes = await pipe.execute()
    now, found = now_ms(), []
    for (name, score), raw in zip(names, hashes, strict=True):
        info = ScheduleInfo.from_hash(name, score, decode_fields(raw), now)
        if info.last_job:
            state = (await read_status(redis, keys, info.last_job)).state
            info = info.model_copy(update={"last_state": state})
        found.append(info)
    return found


async def published_schedule(redis: Redis, keys: Keys, name: str) -> Schedule:
    """The definition workers published for ``name``; SluiceError if none is (or it cannot be
    read by this version)."""
    raw = await redis.hget(keys.schedule(name), ScheduleField.DEFINITION)
    if raw is None:
        raise SluiceError(f"no schedule {name!r} is published (see `sluice schedules`)")
    try:
        return Schedule.model_validate(loads(raw))
    except ValueError as exc:
        raise SluiceError(f"schedule {name!r} cannot be read: {exc}") from None


def run_now_id(name: str) -> str:
    """The id of a job fired by hand: not a tick's, so it never takes a tick's id."""
    return f"sched-{name}-now-{uuid.uuid4().hex[:12]}"
