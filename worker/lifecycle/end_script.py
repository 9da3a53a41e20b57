"""The ending's Lua script: apply a batch of unit endings, each fenced by its token, with the
records of each unit's last batch (`worker.lifecycle.endings` calls it and reads its codes)."""

from __future__ import annotations

from producer.contract.scripts import (
    ARQ_RESULT,
    CLEAR_UNITS,
    EMIT,
    HOLDS,
    KEEP_SPEC,
    NOW,
    PLACE,
    WEBHOOK,
)
from worker.stages.store import WRITE_RECORDS

# KEYS: the default queue, leases, running set, failed set, webhooks, webhook default, events
# ARGV: endings (JSON list), arq result ttl ms, status ttl s, most runs, queue name, events kept
#       (SLUICE_EVENTS_MAXLEN), how many template arguments, then key templates (prefix,
#       suffix): status, arq job, arq result, results, blobs, inputs, spec, named queue
#       (around the queue's name); then the endings' records, 4 arguments each (as STORE's)
# A job's own result TTL and max tries (set at enqueue, in its status hash) win over ARGV's.
# An ending: [mode, job id, unit, token, delay ms, undo try 0/1, set counters 0/1, fields,
#            counters, (first, last ARGV of its records)]; fields and counters are flat
#            name/value lists; fields are written when the job ends (its error and pipeline
#            when it fails); a release after a delay carries its error there, for its event.
# Events: "completed", "failed", and "retrying" for a job run again for missing records or a
# unit released after a delay (a try that failed; a hand-back at shutdown has none).
# Returns a flat list of (place from 0, code) for every ending: "ok" (unit done, job goes on),
# "complete", "resumed", "failed", "released", "lost" (not the unit's token: nothing
# written), "unstored: " and the error Redis raised writing its records (nothing else
# written), or the error Redis raised (a replica's READONLY makes the whole call run again).
END = (
    NOW
    + CLEAR_UNITS
    + KEEP_SPEC
    + HOLDS
    + ARQ_RESULT
    + PLACE
    + WEBHOOK
    + EMIT
    + WRITE_RECORDS
    + """
local now = now_ms()
events_to(KEYS[7], ARGV[6])
local t = {}
for i = 8, 7 + tonumber(ARGV[7]), 2 do t[#t + 1] = {ARGV[i], ARGV[i + 1]} end
local function key(n, id) return t[n][1] .. id .. t[n][2] end
local STATUS, ENVELOPE, RESULT, RESULTS, BLOBS, INPUTS, SPEC, QUEUE = 1, 2, 3, 4, 5, 6, 7, 8
local most_runs = tonumber(ARGV[4])
local released, leaving, ended = {}, {}, {}

-- everything an ending needs of the status hash, in one read (the unit's field is 2nd)
local READ = {'state', '', 'units_done', 'units', 'held', 'total', 'run', 'failed', 'blobs',
              'inputs_list', 'attempts', 'enqueued_at', 'started_at', 'foreign', 'queue',
              'result_ttl_s', 'max_tries', 'priority', 'pipeline', 'callback_url', 'stored'}
local function read(status, k)
  READ[2] = 'unit:' .. k
  local f = redis.call('HMGET', status, unpack(READ))
  local queue = KEYS[1]
  if f[15] and f[15] ~= 'default' then queue = key(QUEUE, f[15]) end
  return {state = f[1], unit = f[2], done = tonumber(f[3]) or 0, units = tonumber(f[4]) or 1,
          held = tonumber(f[5]) or 1, total = tonumber(f[6]) or 0, run = tonumber(f[7]) or 1,
          failed = tonumber(f[8]) or 0, blobs = f[9], inputs = f[10],
          arq = {f[11], f[12], f[13], f[6]}, foreign = f[14], queue = queue,
          ttl = tonumber(f[16]) or tonumber(ARGV[3]), most_runs = tonumber(f[17]) or most_runs,
          priority = f[18], queue_name = f[15], pipeline = f[19], callback = f[20],
          stored = tonumber(f[21]) or 0}
end

-- the unit's last records, sent with its ending: the job's counts of them as fields to write
-- with the ending (no HINCRBY), and ``f.all_new`` when these are every input's records
local function write_last(e, id, status, f)
  local stored, failed, blob = write_records(key(RESULTS, id), key(BLOBS, id), e[10][1],
                                             e[10][2])
  f.stored, f.failed, f.all_new = f.stored + stored, f.failed + failed, stored >= f.total
  local fields = {}  -- a count that did not move is left as it is (absent reads as 0)
  if stored > 0 then fields[1], fields[2] = 'stored', f.stored end
  if failed > 0 then fields[#fields + 1], fields[#fields + 2] = 'failed', f.failed end
  if blob then  -- the ending sets a TTL on the blobs hash only when the job has one
    f.blobs = '1'
    fields[#fields + 1], fields[#fields + 2] = 'blobs', 1
  end
  return fields
end

-- the counters added to what the hash holds (one HMGET, not an HINCRBYFLOAT each), then
-- the fields, which win where both name one
local function with_counters(status, counters, plain, fields)
  if #counters == 0 or plain == 1 then
    for i = 1, #counters do fields[#fields + 1] = counters[i] end
    return fields
  end
  local names, out = {}, {}
  for i = 1, #counters, 2 do names[#names + 1] = counters[i] end
  local old = redis.call('HMGET', status, unpack(names))
  for i = 1, #counters, 2 do
    out[#out + 1] = counters[i]
    out[#out + 1] = (tonumber(old[(i + 1) / 2]) or 0) + tonumber(counters[i + 1])
  end
  for i = 1, #fields do out[#out + 1] = fields[i] end
  return out
end

local function append(list, more)
  for i = 1, #more do list[#list + 1] = more[i] end
  return list
end

-- the job is over: one write of its state and final fields, arq's keys, its webhook queued,
-- and the TTL of each of its keys that exists; a complete job with failed inputs keeps its
-- envelope as the spec (a rename, not a copy, for a job written with raw commands), for
-- retrying those inputs. arq's result is written for a job enqueued without a Client (raw
-- commands, arq's client), which may be waited for by arq. ``unit_field``: the last unit's
-- lease field, dropped here with the envelope (one HDEL).
local function close(id, status, f, state, fields, result, spec_kept, unit_field)
  redis.call('HSET', status, 'state', state, 'finished_at', now / 1000, unpack(fields))
  local keep = state == 'complete' and f.failed > 0
  local dropped = {unit_field}
  if not f.foreign then  -- a Client's job: the envelope is a field of its status hash
    if keep then keep_spec(status, key(ENVELOPE, id), key(SPEC, id)) end
    spec_kept = spec_kept or keep
    dropped[#dropped + 1] = 'envelope'
  elseif keep then
    spec_kept = redis.pcall('RENAME', key(ENVELOPE, id), key(SPEC, id)).ok ~= nil
  else
    redis.call('DEL', key(ENVELOPE, id))
  end
  if #dropped > 0 then redis.call('HDEL', status, unpack(dropped)) end
  if f.foreign then redis.call('SET', key(RESULT, id), result(), 'PX', f.ttl * 1000) end
  queue_webhook(KEYS[5], KEYS[6], status, id, now, f.callback)
  ended[#ended + 1] = id
  local expiring = {STATUS, RESULTS}
  if f.blobs then expiring[#expiring + 1] = BLOBS end
  if f.inputs then expiring[#expiring + 1] = INPUTS end
  if spec_kept then expiring[#expiring + 1] = SPEC end
  for _, n in ipairs(expiring) do redis.call('EXPIRE', key(n, id), f.ttl) end
end

local function fail(id, status, f, fields)
  local err = ''
  for i = 1, #fields, 2 do if fields[i] == 'error' then err = fields[i + 1] end end
  clear_units(f.queue, KEYS[2], status, id)
  keep_spec(status, key(ENVELOPE, id), key(SPEC, id))
  local function result()
    return arq_result(id, f.arq, false, 'failed', {error = err}, ARGV[5], now)
  end
  close(id, status, f, 'failed', fields, result, true)
  redis.call('ZADD', KEYS[4], now, id)
  emit(id, 'failed', f.queue_name, f.pipeline, {'error', err})
  return 'failed'
end

-- the job's last unit is done: complete if every input has its record, else run again for
-- the missing ones, or fail once the runs are spent
local function finish(id, status, f, fields, unit_field)
  local have = f.all_new and f.total or redis.call('HLEN', key(RESULTS, id))
  if have >= f.total then
    local function result() return arq_result(id, f.arq, true, 'complete', {}, ARGV[5], now) end
    -- every input left every stage: the counts say so, whatever the counters added (set
    -- where the counters name them, not written twice)
    local final, set = fields, {fetched = false, transformed = false}
    for i = 1, #final, 2 do
      if set[final[i]] ~= nil then final[i + 1], set[final[i]] = f.total, true end
    end
    if not set.fetched then append(final, {'fetched', f.total}) end
    if not set.transformed then append(final, {'transformed', f.total}) end
    close(id, status, f, 'complete', final, result, false, unit_field)
    emit_many(id, 'completed', f.queue_name, f.pipeline)
    return 'complete'
  end
  redis.call('HSET', status, unpack(fields))
  local missing = f.total - have
  if f.run >= f.most_runs then
    return fail(id, status, f, {'error', missing .. ' of ' .. f.total .. ' inputs have no ' ..
      'record after ' .. f.run .. ' runs (their records were lost from Redis)'})
  end
  clear_units(f.queue, KEYS[2], status, id)
  redis.call('HSET', status, 'state', 'queued', 'run', f.run + 1, 'units_done', 0,
             'stored', have, 'error', missing .. ' of ' .. f.total .. ' inputs had no ' ..
             'record when the job ended: running again for them')
  redis.call('ZADD', f.queue, place(now, f.priority), id)
  ended[#ended + 1] = id
  emit(id, 'retrying', f.queue_name, f.pipeline, {'error', missing .. ' of ' .. f.total ..
       ' inputs had no record', 'delay_ms', 0})
  return 'resumed'
end

-- a unit's lease field goes with it; the last unit's, with the job's ending (`close` drops
-- it with the envelope in one HDEL, `clear_units` with the others)
local function done(e, id, status, member, f, counts)
  leaving[#leaving + 1] = member
  local count = f.done + 1
  local fields = with_counters(status, e[9], e[7],
                               append({'units_done', count, 'held', f.held - 1}, counts))
  if count < f.units then
    redis.call('HDEL', status, 'unit:' .. e[3])
    redis.call('HSET', status, unpack(fields))
    return 'ok'
  end
  return finish(id, status, f, append(fields, e[8]), 'unit:' .. e[3])
end

local function release(e, id, status, member, f, counts)
  local tries = (tonumber(string.match(f.unit, ' (%d+)$')) or 1) - e[6]
  local fields = with_counters(status, e[9], 0, append({'unit:' .. e[3], '- ' .. tries,
                                                        'held', f.held - 1}, counts))
  redis.call('HSET', status, unpack(fields))
  released[#released + 1] = now + e[5]
  released[#released + 1] = member
  if e[5] > 0 and e[6] == 0 then
    emit(id, 'retrying', f.queue_name, f.pipeline, {'unit', e[3], 'delay_ms', e[5],
                                                    'error', e[8][2] or ''})
  end
  return 'released'
end

local function apply(e)
  local mode, id = e[1], e[2]
  local status = key(STATUS, id)
  local f = read(status, e[3])
  if not held_by(f.state, f.unit, e[4]) then return 'lost' end
  local counts = {}
  if e[10] then
    local ok, written = pcall(write_last, e, id, status, f)
    if not ok then return 'unstored: ' .. tostring(written) end
    counts = written
  end
  local member = id .. '#' .. e[3]
  if mode == 'done' then return done(e, id, status, member, f, counts) end
  if mode == 'release' then return release(e, id, status, member, f, counts) end
  return fail(id, status, f, append(e[8], counts))
end

local codes = {}
for i, e in ipairs(cjson.decode(ARGV[1])) do
  local ok, code = pcall(apply, e)
  codes[#codes + 1] = i - 1
  codes[#codes + 1] = ok and code or tostring(code)
end
chunked('ZREM', KEYS[2], leaving)
chunked('ZADD', KEYS[2], released)
chunked('SREM', KEYS[3], ended)
flush_events()
return codes
"""
)
