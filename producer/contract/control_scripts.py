"""The Lua scripts of a job's controls: cancel, retry, and retry of the failed inputs only
(`producer.client.client` runs them), each a check and its writes in one atomic step."""

from __future__ import annotations

from producer.contract.scripts import (
    ARQ_RESULT,
    CLEAR_UNITS,
    EMIT,
    KEEP_SPEC,
    NOW,
    PLACE,
    WAKE,
    WEBHOOK,
)

# Cancel a job that is queued or running. Its units leave the queue and the lease set at once
# and the abort set tells every worker holding one to stop it now; the envelope is kept (as
# the spec) so that `retry` resumes it from its stored records.
# KEYS: status hash, queue, arq job, aborts, running set, leases, spec, results, blobs, inputs,
#       arq result, webhooks, webhook default, events
# ARGV: job id, now (s), ttl s, events kept (SLUICE_EVENTS_MAXLEN)
# The job's own result TTL (``result_ttl_s`` set at enqueue, in its status hash) wins over
# ARGV's, as at every other ending: a cancel is one.
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
                    'queue', 'pipeline', 'callback_url', 'result_ttl_s')
local ttl = tonumber(f[8]) or tonumber(ARGV[3])
redis.call('SET', KEYS[11], arq_result(ARGV[1], f, false, 'cancelled', {}, KEYS[2], now),
           'EX', ttl)
events_to(KEYS[14], ARGV[4])
emit(ARGV[1], 'cancelled', f[5], f[6], {'error', 'cancelled'})
redis.call('ZADD', KEYS[4], now, ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
queue_webhook(KEYS[12], KEYS[13], KEYS[1], ARGV[1], now, f[7])
for _, key in ipairs({KEYS[1], KEYS[7], KEYS[8], KEYS[9], KEYS[10]}) do
  redis.call('EXPIRE', key, ttl)
end
return 1
"""
)

# Both retries end alike: the job back in its queue as one not yet split, its next run
# (``run`` + 1) to look up what is stored, its status hash kept ``expires_s``, a worker woken
# and the "retried" event written. With the pieces they share.
REQUEUE = (
    CLEAR_UNITS
    + WAKE
    + PLACE
    + WEBHOOK
    + EMIT
    + """
-- what the last ending gave the job's result TTL (records, blobs) lives at least as long as
-- the re-queued job (``expires_s``): its run's claim keeps it until that run ends
local function keep_for_run(keys, expires_s)
  for _, kept in ipairs(keys) do
    local left = redis.call('TTL', kept)
    if left >= 0 and left < tonumber(expires_s) then redis.call('EXPIRE', kept, expires_s) end
  end
end
local function requeue(status, queue, id, now, expires_s, wake_list, tokens_kept, stream,
                       events_kept)
  redis.call('ZADD', queue, place(now, redis.call('HGET', status, 'priority')), id)
  local run = tonumber(redis.call('HGET', status, 'run') or '1') or 1
  redis.call('HSET', status, 'state', 'queued', 'error', '', 'finished_at', '', 'run', run + 1,
             'units_done', 0)
  redis.call('EXPIRE', status, expires_s)
  wake(wake_list, 1, tonumber(tokens_kept))
  events_to(stream, events_kept)
  local f = redis.call('HMGET', status, 'queue', 'pipeline', 'total')
  emit(id, 'retried', f[1], f[2], {'total', f[3] or 0})
end
"""
)

# Put a failed or cancelled job back in the queue, as one not yet split; records already stored
# are kept, and its next run (``run`` + 1) looks them up, so it does only the inputs that have
# none. The kept spec is the job's envelope (or, kept by an older Sluice, the job alone).
# The envelope goes back in the status hash (its ``envelope`` field), which lives as long.
# The records and blobs kept, which the ending gave the job's result TTL, live at least as
# long as the status hash while it waits in the queue (its run's claim keeps them until it
# ends): a short TTL must not drop them before the run that relies on them.
# KEYS: status hash, spec, queue, arq job (not used), arq result, leases, failed set, inputs
#       list, wake list, webhooks, events, results, blobs
# ARGV: job id, now (ms), expires ms (not used), job expires s, wake tokens kept, events kept
# Returns 1 re-queued, 0 not failed/cancelled, -1 no spec kept.
RETRY = (
    REQUEUE
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
redis.call('DEL', KEYS[5])
redis.call('ZREM', KEYS[7], ARGV[1])
reset_webhook(KEYS[10], KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[8]) == 1 then redis.call('EXPIRE', KEYS[8], ARGV[4]) end
keep_for_run({KEYS[12], KEYS[13]}, ARGV[4])
requeue(KEYS[1], KEYS[3], ARGV[1], ARGV[2], ARGV[4], KEYS[9], ARGV[5], KEYS[11], ARGV[6])
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
    REQUEUE
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
redis.call('HINCRBY', KEYS[1], 'stored', -#dropped)
redis.call('HINCRBY', KEYS[1], 'failed', -#dropped)
keep_for_run({KEYS[7], KEYS[8]}, ARGV[4])  -- as RETRY's: the good ones wait for the run
requeue(KEYS[1], KEYS[3], ARGV[1], ARGV[2], ARGV[4], KEYS[9], ARGV[5], KEYS[11], ARGV[6])
return #dropped
"""
)
