"""Lua scripts the producer runs so that a check and a write happen as one step, and the Lua
pieces the worker's scripts share with them (the job's units, Redis's clock)."""

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
local function emit_many(id, kind, queue, pipeline)
  if events_kept <= 0 then return end
  if not queue or queue == '' then queue = 'default' end
  local k = kind .. ' ' .. queue .. ' ' .. (pipeline or '')
  local b = batched[k]
  if not b then
    b = {kind, queue, pipeline, {}}
    batched[k] = b
    batch_order[#batch_order + 1] = k
  end
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
  batched, batch_order = {}, {}
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

# Enqueue one job, refusing a duplicate id and respecting the queue cap in the same atomic
# step; a job ready now wakes a worker (a deferred one passes 0 tokens).
# KEYS: the job's queue, arq job, arq result, status hash, inputs list, wake list, queues,
#       events
# ARGV: job id, envelope, score, expires ms, cap, enqueued at (s), pipeline, total, status ttl s,
#       wake tokens kept (0: deferred, wake nobody), queue name ('': default), events kept
#       (SLUICE_EVENTS_MAXLEN), then the status fields the enqueue chose (name, value...:
#       producer.contract.placement)
# Returns 1 enqueued, 0 queue at cap, -1 job exists, -2 a new queue past MAX_QUEUES.
ENQUEUE = (
    ADMIT
    + WAKE
    + EMIT
    + """
if redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4]) > 0 then return -1 end
if not queue_allowed(KEYS[7], ARGV[11]) then return -2 end
local cap = tonumber(ARGV[5])
if cap > 0 and redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
admit(KEYS[1], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[7], ARGV[8],
      ARGV[9], {unpack(ARGV, 13)})
register_queue(KEYS[7], ARGV[11])
events_to(KEYS[8], ARGV[12])
emit(ARGV[1], 'enqueued', ARGV[11], ARGV[7], {'total', ARGV[8]})
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('EXPIRE', KEYS[5], ARGV[9])
  redis.call('HSET', KEYS[4], 'inputs_list', 1)  -- the ending sets its TTL when this is set
end
wake(KEYS[6], 1, tonumber(ARGV[10]))
return 1
"""
)

# Enqueue many jobs (`enqueue_many`), in order, while the queue has room under its cap.
# KEYS: the jobs' queue, wake list, queues, events
# ARGV: cap, score, expires ms, enqueued at (s), pipeline, status ttl s, wake tokens kept,
#       status hash prefix, queue name ('': default), the status fields the enqueue chose
#       (JSON list: name, value...), events kept (SLUICE_EVENTS_MAXLEN), then (id, envelope,
#       total) per job
# Returns how many of the jobs (the first ones) were admitted (-1: a new queue past
# MAX_QUEUES, none admitted). The ids are fresh
# (producer.client.bulk.job_ids), so unlike ENQUEUE there is no check that a job exists already.
# The queue gets every admitted job in one ZADD (all share one score; ids break the tie).
ENQUEUE_MANY = (
    ADMIT
    + CHUNKED
    + WAKE
    + EMIT
    + """
local first = 12
local n = (#ARGV - first + 1) / 3
local chosen = cjson.decode(ARGV[10])
if not queue_allowed(KEYS[3], ARGV[9]) then return -1 end
local cap = tonumber(ARGV[1])
if cap > 0 then n = math.max(0, math.min(n, cap - redis.call('ZCARD', KEYS[1]))) end
local entries = {}
for j = 0, n - 1 do
  local i = first + 3 * j
  admit(false, ARGV[8] .. ARGV[i], ARGV[i], ARGV[i + 1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
        ARGV[i + 2], ARGV[6], chosen)
  entries[2 * j + 1], entries[2 * j + 2] = ARGV[2], ARGV[i]
end
events_to(KEYS[4], ARGV[11])
for j = 0, n - 1 do emit_many(ARGV[first + 3 * j], 'enqueued', ARGV[9], ARGV[5]) end
flush_events()
chunked('ZADD', KEYS[1], entries)
if n > 0 then register_queue(KEYS[3], ARGV[9]) end
wake(KEYS[2], n, tonumber(ARGV[7]))
return n
"""
)

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

# Cancel a job that is queued or running. Its units leave the queue and the lease set at once
# and the abort set tells every worker holding one to stop it now; the envelope is kept (as
# the spec) so that `retry` resumes it from its stored records.
# KEYS: status hash, queue, arq job, aborts, running set, leases, spec, results, blobs, inputs,
#       arq result, webhooks, webhook default, events
# ARGV: job id, now (s), ttl s, events kept (SLUICE_EVENTS_MAXLEN)
# Returns 1 cancelled, 0 already final (or unknown).
CANCEL = (
    NOW
    + CLEAR_UNITS
    + KEEP_SPEC
    + ARQ_RESULT
    + WEBHOOK
    + EMIT
    + """
local state = redis.call('HGET', KEYS[1], 'state')
local queued = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not queued and state ~= 'queued' and state ~= 'in_progress' then return 0 end
if state == 'complete' or state == 'failed' or state == 'cancelled' then return 0 end
clear_units(KEYS[2], KEYS[6], KEYS[1], ARGV[1])
keep_spec(KEYS[1], KEYS[3], KEYS[7])
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[2], 'error', 'cancelled')
redis.call('HDEL', KEYS[1], 'envelope')
redis.call('DEL', KEYS[3])
local now = now_ms()
local f = redis.call('HMGET', KEYS[1], 'attempts', 'enqueued_at', 'started_at', 'total',
                    'queue', 'pipeline', 'callback_url')
redis.call('SET', KEYS[11], arq_result(ARGV[1], f, false, 'cancelled', {}, KEYS[2], now),
           'EX', ARGV[3])
events_to(KEYS[14], ARGV[4])
emit(ARGV[1], 'cancelled', f[5], f[6], {'error', 'cancelled'})
redis.call('ZADD', KEYS[4], now, ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
queue_webhook(KEYS[12], KEYS[13], KEYS[1], ARGV[1], now, f[7])
for _, key in ipairs({KEYS[1], KEYS[7], KEYS[8], KEYS[9], KEYS[10]}) do
  redis.call('EXPIRE', key, ARGV[3])
end
return 1
"""
)

# The event of a job put back in its queue by `retry` (needs EMIT).
RETRIED = """
local function retried(stream, kept, status, id)
  events_to(stream, kept)
  local f = redis.call('HMGET', status, 'queue', 'pipeline', 'total')
  emit(id, 'retried', f[1], f[2], {'total', f[3] or 0})
end
"""

# Put a failed or cancelled job back in the queue, as one not yet split; records already stored
# are kept, and its next run (``run`` + 1) looks them up, so it does only the inputs that have
# none. The kept spec is the job's envelope (or, kept by an older Sluice, the job alone).
# The envelope goes back in the status hash (its ``envelope`` field), which lives as long.
# KEYS: status hash, spec, queue, arq job (not used), arq result, leases, failed set, inputs
#       list, wake list, webhooks, events
# ARGV: job id, now (ms), expires ms (not used), job expires s, wake tokens kept, events kept
# Returns 1 re-queued, 0 not failed/cancelled, -1 no spec kept.
RETRY = (
    CLEAR_UNITS
    + WAKE
    + PLACE
    + WEBHOOK
    + EMIT
    + RETRIED
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'failed' and state ~= 'cancelled' then return 0 end
local spec = redis.call('GET', KEYS[2])
if not spec then return -1 end
local ok, kept = pcall(cjson.decode, spec)
local envelope = spec
if not (ok and type(kept) == 'table' and type(kept.k) == 'table') then
  envelope = '{"t":1,"f":"sluice","a":[],"k":' .. spec .. ',"et":' .. ARGV[2] .. '}'
end
clear_units(KEYS[3], KEYS[6], KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], 'envelope', envelope)
redis.call('ZADD', KEYS[3], place(ARGV[2], redis.call('HGET', KEYS[1], 'priority')), ARGV[1])
redis.call('DEL', KEYS[5])
redis.call('ZREM', KEYS[7], ARGV[1])
reset_webhook(KEYS[10], KEYS[1], ARGV[1])
local run = tonumber(redis.call('HGET', KEYS[1], 'run') or '1') or 1
redis.call('HSET', KEYS[1], 'state', 'queued', 'error', '', 'finished_at', '', 'run', run + 1,
           'units_done', 0)
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('EXISTS', KEYS[8]) == 1 then redis.call('EXPIRE', KEYS[8], ARGV[4]) end
wake(KEYS[9], 1, tonumber(ARGV[5]))
retried(KEYS[11], ARGV[6], KEYS[1], ARGV[1])
return 1
"""
)

# Run a complete job again for its failed inputs only: their records (and blobs) go, the
# good ones stay, and the next run (``run`` + 1) looks up what is stored, so it redoes only
# those. The caller names the failed inputs it read; each is checked again here (a record
# that is not a failure is left alone).
# KEYS: status hash, spec, queue, arq job (not used), arq result, leases, results, blobs, wake
#       list, webhooks, events
# ARGV: job id, now (ms), expires ms (not used), job expires s, wake tokens kept, events kept,
#       then input indexes
# Returns how many records were dropped (the job re-queued if > 0); 0: none of them is a
# failure; -1 the job is not complete; -2 no copy of the job was kept.
RETRY_INPUTS = (
    CLEAR_UNITS
    + WAKE
    + PLACE
    + WEBHOOK
    + EMIT
    + RETRIED
    + """
if redis.call('HGET', KEYS[1], 'state') ~= 'complete' then return -1 end
local spec = redis.call('GET', KEYS[2])
if not spec then return -2 end
local dropped = {}
for i = 7, #ARGV do
  local record = redis.call('HGET', KEYS[7], ARGV[i])
  local ok, parsed = pcall(cjson.decode, record or '')
  if ok and type(parsed) == 'table' and parsed.ok == false then dropped[#dropped + 1] = ARGV[i] end
end
if #dropped == 0 then return 0 end
chunked('HDEL', KEYS[7], dropped)
chunked('HDEL', KEYS[8], dropped)
clear_units(KEYS[3], KEYS[6], KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], 'envelope', spec)
redis.call('DEL', KEYS[2], KEYS[5])
reset_webhook(KEYS[10], KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], place(ARGV[2], redis.call('HGET', KEYS[1], 'priority')), ARGV[1])
local run = tonumber(redis.call('HGET', KEYS[1], 'run') or '1') or 1
redis.call('HINCRBY', KEYS[1], 'stored', -#dropped)
redis.call('HINCRBY', KEYS[1], 'failed', -#dropped)
redis.call('HSET', KEYS[1], 'state', 'queued', 'error', '', 'finished_at', '', 'run', run + 1,
           'units_done', 0)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[7], ARGV[4])
wake(KEYS[9], 1, tonumber(ARGV[5]))
retried(KEYS[11], ARGV[6], KEYS[1], ARGV[1])
return #dropped
"""
)
