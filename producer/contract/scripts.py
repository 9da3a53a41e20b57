"""The Lua pieces Sluice's scripts share (events, a job made ready, the job's units, fencing,
Redis's clock): the producer's whole scripts are in `enqueue_scripts` and `control_scripts`,
the worker's beside the code that runs them."""

from __future__ import annotations

from producer.contract.placement import MAX_QUEUES, PRIORITY_STEP_MS

# The job event stream (producer.contract.events): every script that changes a job's state
# adds its entries in the same atomic step, trimmed as it goes (MAXLEN ~: whole nodes at a
# time, the cheap way). ``events_to(key, kept)`` first, with the stream's key and
# SLUICE_EVENTS_MAXLEN (0: no events); then ``emit(id, type, queue, pipeline, extra)`` for an
# event with fields of its own (``extra``: a flat list, name, value...), an entry each; or
# ``emit_many(id, type, queue, pipeline)`` for jobs that moved alike in this call (enqueued
# together, started by one claim, completed by one batch of endings), written by
# ``flush_events()`` before the script returns as one entry per (type, queue, pipeline) with
# the ids in ``jobs``, space-separated (``job`` when there is one). An XADD costs Redis about
# 4 us with the append-only file on, a third of a tiny job's Redis time when written three
# times per job; one a call costs next to nothing. A queue of '' or nil is "default".
EMIT = """
local events_key, events_kept = false, 0
local batched, batch_order = {}, {}
local function events_to(key, kept)
  events_key, events_kept = key, tonumber(kept) or 0
end
local function add_entry(a)
  redis.call('XADD', events_key, 'MAXLEN', '~', events_kept, '*', unpack(a))
end
local function emit(id, kind, queue, pipeline, extra)
  if events_kept <= 0 then return end
  if not queue or queue == '' then queue = 'default' end
  local a = {'job', id, 'type', kind, 'queue', queue}
  if pipeline then a[#a + 1] = 'pipeline'; a[#a + 1] = pipeline end
  if extra then for i = 1, #extra do a[#a + 1] = extra[i] end end
  add_entry(a)
end
local last_many = {}  -- the last batch added to, and what it is for
local function emit_many(id, kind, queue, pipeline)
  if events_kept <= 0 then return end
  if not queue or queue == '' then queue = 'default' end
  local b = last_many[4]
  if last_many[1] == kind and last_many[2] == queue and last_many[3] == pipeline then
    b[4][#b[4] + 1] = id
    return
  end
  local k = kind .. ' ' .. queue .. ' ' .. (pipeline or '')
  b = batched[k]
  last_many = {kind, queue, pipeline, false}
  if not b then
    b = {kind, queue, pipeline, {}}
    batched[k] = b
    batch_order[#batch_order + 1] = k
  end
  last_many[4] = b
  b[4][#b[4] + 1] = id
end
local function flush_events()
  for _, k in ipairs(batch_order) do
    local b = batched[k]
    local a = {'type', b[1], 'queue', b[2]}
    if b[3] then a[#a + 1] = 'pipeline'; a[#a + 1] = b[3] end
    a[#a + 1] = #b[4] == 1 and 'job' or 'jobs'
    a[#a + 1] = table.concat(b[4], ' ')
    add_entry(a)
  end
  batched, batch_order, last_many = {}, {}, {}
end
"""

# Shared by the scripts that make a job ready: write it as Sluice expects it (the queue entry,
# the status hash with arq's envelope in its ``envelope`` field and a TTL that outlasts a
# deferral), and push wake tokens so an idle worker starts at once instead of at its next poll
# (at most `kept` stay in the list). The envelope lives in the job's own hash, not at
# ``arq:job:{id}``: a key less per job (its write, read, expiry and delete), and every key of
# a job is named by its id. A false ``queue``: the caller adds the job to the queue itself
# (many in one ZADD).
ADMIT = """
local function admit(queue, status, id, envelope, score, expires_ms, enqueued, pipeline, total,
                     ttl, chosen)
  if queue then redis.call('ZADD', queue, score, id) end
  -- no zero counts: an absent count reads as 0 (docs/wire-format.md), 4 fields a job fewer
  redis.call('HSET', status, 'state', 'queued', 'pipeline', pipeline, 'total', total,
             'enqueued_at', enqueued, 'envelope', envelope, unpack(chosen))
  redis.call('PEXPIRE', status, math.max(tonumber(ttl) * 1000, tonumber(expires_ms)))
end
-- a queue other than "default" is named in the registry of queues, for `sluice stats`; a
-- new name past MAX_QUEUES is refused (each name costs every stats read and metrics scrape)
local function queue_allowed(registry, name)
  return name == '' or redis.call('SISMEMBER', registry, name) == 1
         or redis.call('SCARD', registry) < MAX_QUEUES
end
local function register_queue(registry, name)
  if name ~= '' then redis.call('SADD', registry, name) end
end
""".replace("MAX_QUEUES", str(MAX_QUEUES))
# One command over many arguments, a thousand at a time: Lua's unpack stops at its stack's
# limit (8,000 values), and a call may carry more (a claim or a shutdown's endings of up to
# SLUICE_MAX_JOBS jobs). Pairs (ZADD's score, member) stay whole: the step is even.
CHUNKED = """
local function chunked(command, key, args)
  for i = 1, #args, 1000 do
    redis.call(command, key, unpack(args, i, math.min(i + 999, #args)))
  end
end
"""
WAKE = """
local function wake(list, count, kept)
  count = math.min(count, kept)
  if count <= 0 then return end
  local tokens = {}
  for t = 1, count do tokens[t] = 1 end
  redis.call('LPUSH', list, unpack(tokens))
  redis.call('LTRIM', list, 0, kept - 1)
end
"""

# A job's place in its queue (producer.contract.placement): due (ms) less its priority's
# head start, for the scripts that put a job back in its queue.
PLACE = """
local function place(due, priority)
  return due - (tonumber(priority) or 0) * PRIORITY_STEP_MS
end
""".replace("PRIORITY_STEP_MS", str(PRIORITY_STEP_MS))

# Redis's own clock, in ms: every lease, lapse and abort is judged by one clock, whatever the
# clocks of the hosts the workers and producers run on say.
NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# Fencing, the one rule: a write for a unit is made only while the unit's token holds it. A
# unit's lease field in its job's status hash (``unit:{k}``) reads "{token} {tries}" while a
# worker holds it, "- {tries}" once it is handed back; the claim writes a new token at each
# hand-out, and cancel, failure and retry delete the field. So a write that shows an older
# token (from a worker paused past its lease, partitioned, or late) is refused whatever the
# clocks say, and since the state must be in_progress too, none lands on a job that ended.
# ``holds`` reads the two fields and says whether ``token`` holds the unit (and the field's
# value, for its try count); ``held_by`` is the rule itself, for a script that read them.
HOLDS = """
local function held_by(state, field, token)
  return state == 'in_progress' and field ~= false and field ~= nil
         and string.sub(field, 1, #token + 1) == token .. ' '
end
local function holds(status, field, token)
  local f = redis.call('HMGET', status, 'state', field)
  return held_by(f[1], f[2], token), f[2]
end
"""

# A job's units out of every set that hands them out or holds them, and their lease fields out
# of the status hash: after this no worker can claim, renew, store or end one of them (their
# holders learn it at their next renewal or write, and stop). Members are "{id}#{k}"; the
# job's own id is the queue member of a job not yet split.
CLEAR_UNITS = (
    CHUNKED
    + """
local function clear_units(queue, leases, status, id)
  local units = tonumber(redis.call('HGET', status, 'units') or '0') or 0
  local members, fields = {id}, {}
  for k = 0, units - 1 do
    members[#members + 1] = id .. '#' .. k
    fields[#fields + 1] = 'unit:' .. k
  end
  chunked('ZREM', queue, members)
  chunked('ZREM', leases, members)
  chunked('HDEL', status, fields)
  if units > 0 then redis.call('HSET', status, 'held', 0) end
end
"""
)

# Keep the envelope of a job that ends without completing, for `retry` (a copy, made on the
# server: the envelope may be megabytes): a Client's job has it in its status hash, a job
# written with raw commands at ``arq:job:{id}``.
KEEP_SPEC = """
local function keep_spec(status, envelope_key, spec_key)
  local envelope = redis.call('HGET', status, 'envelope') or redis.call('GET', envelope_key)
  if envelope then redis.call('SET', spec_key, envelope) end
end
"""

# arq's result envelope of a job that ended, for arq's own clients (`Job.result()`): JSON as
# everything else, built by hand so that its empty args stay a list. ``now`` is in ms.
ARQ_RESULT = """
local function arq_result(id, f, ok, state, extra, queue, now)
  -- f: the status hash's attempts, enqueued_at, started_at, total
  local r = {state = state, total = tonumber(f[4]) or 0}
  for k, v in pairs(extra) do r[k] = v end
  local function ms(s) return string.format('%d', math.floor((tonumber(s) or 0) * 1000)) end
  return '{"t":' .. (tonumber(f[1]) or 1) .. ',"f":"sluice","a":[],"k":{},"et":' .. ms(f[2])
    .. ',"s":' .. (ok and 'true' or 'false') .. ',"r":' .. cjson.encode(r) .. ',"st":'
    .. ms(f[3]) .. ',"ft":' .. string.format('%d', now) .. ',"q":' .. cjson.encode(queue)
    .. ',"id":' .. cjson.encode(id) .. '}'
end
"""

# A job's ending is sent to its webhook (worker.webhooks) when it has a callback URL of its
# own or the namespace has a default (a live worker with SLUICE_WEBHOOK_URL keeps the default
# key): queued with the ending, in the same step, so no ending is missed or sent twice by
# design. A retry resets the delivery, so that the next ending is sent afresh.
WEBHOOK = """
-- ``url``: the job's callback_url as the caller read it with its other fields (false: none);
-- whether the namespace has a default is read once a script call, not once a job
local webhook_default = nil
local function queue_webhook(webhooks, default, status, id, now, url)
  if not url then
    if webhook_default == nil then webhook_default = redis.call('EXISTS', default) == 1 end
    if not webhook_default then return end
  end
  redis.call('ZADD', webhooks, now, id)
  redis.call('HSET', status, 'webhook_state', 'pending', 'webhook_attempts', 0)
  redis.call('HDEL', status, 'webhook_error', 'webhook_at')
end
local function reset_webhook(webhooks, status, id)
  redis.call('ZREM', webhooks, id)
  redis.call('HDEL', status, 'webhook_state', 'webhook_attempts', 'webhook_error', 'webhook_at')
end
"""
