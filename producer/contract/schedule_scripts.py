"""The Lua scripts that publish schedules and fire each tick once, whatever the number of
workers, and the fields of a schedule's hash ``{ns}:schedule:{name}``.

``{ns}:schedules`` holds each schedule's next tick. A worker fires a tick with FIRE, giving
the next tick it expects to find there and the one to put in its place: the script enqueues
the job only if the score is still the one expected (compare-and-set), so of two workers
that saw the same tick due, one enqueues it and the other finds the score moved on.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from producer.contract.scripts import ADMIT, EMIT, NOW, WAKE


class ScheduleField(StrEnum):
    """A field of a schedule's hash."""

    DEFINITION = "definition"  # the Schedule as JSON (producer.contract.schedules)
    DIGEST = "digest"  # its short hash: a worker fires only the definition it holds
    PUBLISHED_BY = "published_by"  # the worker that published this definition
    PUBLISHED_AT = "published_at"  # ms epoch
    SEEN_AT = "seen_at"  # ms epoch: a live worker defines it (refreshed with each beat)
    HELD_AT = "held_at"  # ms epoch: a live worker holds the published definition (each beat)
    LAST_TICK = "last_tick"  # ms epoch of the last tick fired
    LAST_JOB = "last_job"  # the job it enqueued
    FIRED = "fired"  # ticks fired
    SKIPPED = "skipped"  # ticks not enqueued (queue at its cap, job id taken)
    LAST_ERROR = "last_error"  # why the last skipped tick was skipped


class Fired(IntEnum):
    """What FIRE did with a tick."""

    ENQUEUED = 1  # the tick's job is queued; the next tick is set
    NOT_MINE = 0  # not due yet, fired by another worker already, or the schedule is gone
    REDEFINED = -1  # another definition was published since: this worker's is not fired
    EXISTS = 2  # the tick's job id was taken already: skipped, the next tick is set
    QUEUE_FULL = 3  # its queue was at SLUICE_MAX_QUEUED_JOBS: skipped, the next tick is set
    TOO_MANY_QUEUES = 4  # its queue would be one past MAX_QUEUES: skipped, next tick set


# Redis's clock (ms) and the next tick of each schedule named (nil: none), read together in
# the schedules' slot: the clock of the node that FIRE (or TICK_CHECK) will run on.
# KEYS: schedules set. ARGV: the schedule names.
LOOK = (
    NOW
    + """
local ticks = {}
for i, name in ipairs(ARGV) do ticks[i] = redis.call('ZSCORE', KEYS[1], name) end
return {now_ms(), ticks}
"""
)

# Publish a worker's definition of a schedule at its start. The same definition keeps the
# next tick already set (a restart neither skips nor repeats a tick); a new or different one
# (the last worker started wins) starts from ``first tick``.
# KEYS: schedules set, schedule hash
# ARGV: name, definition (JSON), digest, first tick (ms), worker, now (ms)
# Returns 0 already published, 1 new, 2 replaced another definition.
PUBLISH = """
local old = redis.call('HGET', KEYS[2], 'digest')
redis.call('HSET', KEYS[2], 'seen_at', ARGV[6])
if old == ARGV[3] and redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'definition', ARGV[2], 'digest', ARGV[3], 'published_by', ARGV[5],
           'published_at', ARGV[6])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
if old then return 2 end
return 1
"""

# Fire one tick of a schedule: if its next tick is still ``expected``, the tick is due by
# Redis's clock and the definition published is this worker's, enqueue the tick's job as
# ENQUEUE does (queue, status hash, registry of queues, wake list) and set the next tick.
# A tick that cannot be enqueued is skipped (counted, with why) and the next tick set. A
# tick whose job is there already, enqueued by this schedule (a try of the same tick that
# stopped half-way: on a cluster, `TICK_JOB` then `TICK_SET`), counts as fired.
# KEYS: schedules set, schedule hash, the job's queue, arq job, arq result, status hash,
#       wake list, queues, events stream
# ARGV: name, expected next tick (ms), tick (ms), next tick (ms), digest, job id, envelope,
#       queue score, expires ms, enqueued at (s), pipeline, total, status ttl s, wake tokens
#       kept, queue name ('': default), queue cap (0: none), events kept (0: none), then the
#       status fields the schedule chose (name, value...: producer.contract.placement)
# Returns a `Fired` value.
_TICK_DUE = """
local function tick_due(schedules, schedule)
  local score = redis.call('ZSCORE', schedules, ARGV[1])
  if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
  if tonumber(ARGV[3]) > now_ms() then return 0 end
  if redis.call('HGET', schedule, 'digest') ~= ARGV[5] then return -1 end
  return nil
end
"""
_TICK_JOB = """
local function tick_job(queue, arq_job, arq_result, status, wake_list, queues, events)
  if redis.call('EXISTS', arq_job, arq_result, status) > 0 then
    if redis.call('HGET', status, 'schedule') == ARGV[1] then return 1 end
    return 2, 'job ' .. ARGV[6] .. ' exists already'
  end
  if not queue_allowed(queues, ARGV[15]) then return 4, 'too many queues' end
  local cap = tonumber(ARGV[16])
  if cap > 0 and redis.call('ZCARD', queue) >= cap then
    return 3, 'queue at its cap (SLUICE_MAX_QUEUED_JOBS)'
  end
  admit(queue, status, ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12],
        ARGV[13], {unpack(ARGV, 18)})
  register_queue(queues, ARGV[15])
  events_to(events, ARGV[17])
  emit(ARGV[6], 'enqueued', ARGV[15], ARGV[11], {'total', ARGV[12], 'schedule', ARGV[1]})
  wake(wake_list, 1, tonumber(ARGV[14]))
  return 1
end
"""
_TICK_SET = """
local function tick_set(schedules, schedule, outcome, why)
  redis.call('ZADD', schedules, ARGV[4], ARGV[1])
  if outcome ~= 1 then
    redis.call('HINCRBY', schedule, 'skipped', 1)
    redis.call('HSET', schedule, 'last_error', why)
    return outcome
  end
  redis.call('HINCRBY', schedule, 'fired', 1)
  redis.call('HSET', schedule, 'last_tick', ARGV[3], 'last_job', ARGV[6])
  return 1
end
"""
FIRE = (
    ADMIT
    + WAKE
    + NOW
    + EMIT
    + _TICK_DUE
    + _TICK_JOB
    + _TICK_SET
    + """
local mine = tick_due(KEYS[1], KEYS[2])
if mine then return mine end
local outcome, why = tick_job(KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
return tick_set(KEYS[1], KEYS[2], outcome, why)
"""
)

# On a Redis Cluster a schedule's keys and its tick's job are in different slots, so FIRE's
# three steps are three scripts, each in one slot: TICK_CHECK (is the tick this worker's to
# fire: FIRE's `Fired` 0 or -1, else 1), TICK_JOB (enqueue the job in its shard, or say why
# not: {outcome, why}), TICK_SET (check again, set the next tick and count the outcome).
# The job id is the tick's own, so a worker that stops between TICK_JOB and TICK_SET leaves
# the tick due, and the next try finds the job there and counts it fired (not twice).
# KEYS: TICK_CHECK and TICK_SET the schedules set and schedule hash; TICK_JOB FIRE's third
#       to ninth. ARGV: as FIRE; TICK_SET's 7th and 8th are TICK_JOB's outcome and why.
TICK_CHECK = NOW + _TICK_DUE + "\nreturn tick_due(KEYS[1], KEYS[2]) or 1\n"
TICK_JOB = (
    ADMIT
    + WAKE
    + NOW
    + EMIT
    + _TICK_JOB
    + """
local outcome, why = tick_job(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
return {outcome, why or ''}
"""
)
TICK_SET = (
    NOW
    + _TICK_DUE
    + _TICK_SET
    + """
local mine = tick_due(KEYS[1], KEYS[2])
if mine then return mine end
return tick_set(KEYS[1], KEYS[2], tonumber(ARGV[7]), ARGV[8])
"""
)

# A worker's beat for one schedule it defines: it marks the schedule as defined by a live
# worker (seen_at) and, when the published definition is its own, as held (held_at). When
# the published definition is another's that no live worker has held since ``oldest held``
# (every worker holding it stopped: a deploy rolled back, a canary killed), this worker's
# replaces it, its ticks resuming at ``resume tick``; while a holder lives, the last
# published stays (no flapping between two definitions).
# KEYS: schedules set, schedule hash
# ARGV: name, digest, now (ms), oldest held_at of a live holder (ms), definition (JSON),
#       worker, resume tick (ms)
# Returns {outcome, the digest published before}: outcome 1 held (its own), 0 another's,
# held by a live worker, 2 taken over, -1 not published (forgotten: PUBLISH it afresh).
HOLD = """
redis.call('HSET', KEYS[2], 'seen_at', ARGV[3])
local published = redis.call('HGET', KEYS[2], 'digest')
if not published or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {-1, ''} end
if published == ARGV[2] then
  redis.call('HSET', KEYS[2], 'held_at', ARGV[3])
  return {1, published}
end
local held = math.max(tonumber(redis.call('HGET', KEYS[2], 'held_at') or '0') or 0,
                      tonumber(redis.call('HGET', KEYS[2], 'published_at') or '0') or 0)
if held >= tonumber(ARGV[4]) then return {0, published} end
redis.call('HSET', KEYS[2], 'definition', ARGV[5], 'digest', ARGV[2], 'published_by', ARGV[6],
           'published_at', ARGV[3], 'held_at', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[7], ARGV[1])
return {2, published}
"""

# Forget the schedules no live worker has defined for a long while (removed from every
# worker's settings): their next tick and their hash go.
# KEYS: schedules set
# ARGV: schedule hash prefix ("{ns}:schedule:"), oldest seen_at kept (ms)
# Returns the names forgotten.
FORGET = """
local gone = {}
for _, name in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local seen = tonumber(redis.call('HGET', ARGV[1] .. name, 'seen_at') or '0') or 0
  if seen < tonumber(ARGV[2]) then
    redis.call('ZREM', KEYS[1], name)
    redis.call('DEL', ARGV[1] .. name)
    gone[#gone + 1] = name
  end
end
return gone
"""
