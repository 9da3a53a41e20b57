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
local most_runs, status_ttl = tonumber(ARGV[4]), tonumber(ARGV[3])
local released, leaving, ended = {}, {}, {}

-- Per ending, Lua's own work costs Redis about as much as the commands do (every table,
-- string or closure made is an allocation, and garbage): the keys are built once, the fields
-- to write go into one list, and what only a rare ending needs is made only for it.

-- everything an ending needs of the status hash, in one read (the unit's field is 2nd)
local READ = {'state', '', 'units_done', 'units', 'held', 'total', 'run', 'failed', 'blobs',
              'inputs_list', 'attempts', 'enqueued_at', 'started_at', 'foreign', 'queue',
              'result_ttl_s', 'max_tries', 'priority', 'pipeline', 'callback_url', 'stored'}
local function read(status, k)
  READ[2] = 'unit:' .. k
  return redis.call('HMGET', status, unpack(READ))
end
local function fields_of(f)
  return {unit = f[2], done = tonumber(f[3]) or 0, units = tonumber(f[4]) or 1,
          held = tonumber(f[5]) or 1, total = tonumber(f[6]) or 0, run = tonumber(f[7]) or 1,
          failed = tonumber(f[8]) or 0, blobs = f[9], inputs = f[10], attempts = f[11],
          enqueued_at = f[12], started_at = f[13], foreign = f[14], queue_name = f[15],
          ttl = tonumber(f[16]) or status_ttl, most_runs = tonumber(f[17]) or most_runs,
          priority = f[18], pipeline = f[19], callback = f[20], stored = tonumber(f[21]) or 0}
end

-- the job's queue, for the endings that put it back or clear its units
local function queue_of(f)
  if f.queue_name and f.queue_name ~= 'default' then return key(QUEUE, f.queue_name) end
  return KEYS[1]
end

-- the fields an ending writes, in one flat list (name, value...); later names win in HSET
local function put(w, name, value)
  local n = #w
  w[n + 1], w[n + 2] = name, value
end

-- the counts of the unit's last records (written with its ending) into ``w`` (no HINCRBY),
-- and ``f.all_new`` when these are every input's records
local function count_last(f, w, stored, failed, blob)
  f.stored, f.failed, f.all_new = f.stored + stored, f.failed + failed, stored >= f.total
  -- a count that did not move is left as it is (absent reads as 0)
  if stored > 0 then put(w, 'stored', f.stored) end
  if failed > 0 then put(w, 'failed', f.failed) end
  if blob then  -- the ending sets a TTL on the blobs hash only when the job has one
    f.blobs = '1'
    put(w, 'blobs', 1)
  end
end

-- the counters into ``w``: set as sent (``plain``: the hash holds none), else added to what
-- the hash holds (one HMGET, not an HINCRBYFLOAT each)
local function put_counters(status, counters, plain, w)
  local n = #w
  if plain == 1 then
    for i = 1, #counters do w[n + i] = counters[i] end
    return
  end
  local names = {}
  for i = 1, #counters, 2 do names[#names + 1] = counters[i] end
  if #names == 0 then return end
  local old = redis.call('HMGET', status, unpack(names))
  for i = 1, #counters, 2 do
    w[n + i] = counters[i]
    w[n + i + 1] = (tonumber(old[(i + 1) / 2]) or 0) + tonumber(counters[i + 1])
  end
end

-- the job is over: one write of its state and final fields ``w``, arq's keys, its webhook
-- queued, and the TTL of each of its keys that exists; a complete job with failed inputs
-- keeps its envelope as the spec (a rename, not a copy, for a job written with raw
-- commands), for retrying those inputs. arq's result (``ok``, ``extra``) is written for a job
-- enqueued without a Client (raw commands, arq's client), which may be waited for by arq.
-- ``unit_field``: the last unit's lease field, dropped here with the envelope (one HDEL).
local function close(id, status, results, f, state, w, ok, extra, spec_kept, unit_field)
  redis.call('HSET', status, 'state', state, 'finished_at', now / 1000, unpack(w))
  local keep = state == 'complete' and f.failed > 0
  if not f.foreign then  -- a Client's job: the envelope is a field of its status hash
    if keep then keep_spec(status, key(ENVELOPE, id), key(SPEC, id)) end
    spec_kept = spec_kept or keep
    if unit_field then
      redis.call('HDEL', status, unit_field, 'envelope')
    else
      redis.call('HDEL', status, 'envelope')
    end
  else
    if keep then
      spec_kept = redis.pcall('RENAME', key(ENVELOPE, id), key(SPEC, id)).ok ~= nil
    else
      redis.call('DEL', key(ENVELOPE, id))
    end
    if unit_field then redis.call('HDEL', status, unit_field) end
    local result = arq_result(id, {f.attempts, f.enqueued_at, f.started_at, f.total}, ok,
                              state, extra, ARGV[5], now)
    redis.call('SET', key(RESULT, id), result, 'PX', f.ttl * 1000)
  end
  queue_webhook(KEYS[5], KEYS[6], status, id, now, f.callback)
  ended[#ended + 1] = id
  redis.call('EXPIRE', status, f.ttl)
  redis.call('EXPIRE', results, f.ttl)
  if f.blobs then redis.call('EXPIRE', key(BLOBS, id), f.ttl) end
  if f.inputs then redis.call('EXPIRE', key(INPUTS, id), f.ttl) end
  if spec_kept then redis.call('EXPIRE', key(SPEC, id), f.ttl) end
end

local function fail(id, status, results, f, w)
  local err = ''
  for i = 1, #w, 2 do if w[i] == 'error' then err = w[i + 1] end end
  clear_units(queue_of(f), KEYS[2], status, id)
  keep_spec(status, key(ENVELOPE, id), key(SPEC, id))
  close(id, status, results, f, 'failed', w, false, {error = err}, true)
  redis.call('ZADD', KEYS[4], now, id)
  emit(id, 'failed', f.queue_name, f.pipeline, {'error', err})
  return 'failed'
end

-- the job's last unit is done: complete if every input has its record, else run again for
-- the missing ones, or fail once the runs are spent
local function finish(id, status, results, f, w, unit_field)
  local have = f.all_new and f.total or redis.call('HLEN', results)
  if have >= f.total then
    -- every input left every stage: the counts say so, whatever the counters added (set
    -- where the counters name them, not written twice)
    local fetched, transformed = false, false
    for i = 1, #w, 2 do
      local name = w[i]
      if name == 'fetched' then
        w[i + 1], fetched = f.total, true
      elseif name == 'transformed' then
        w[i + 1], transformed = f.total, true
      end
    end
    if not fetched then put(w, 'fetched', f.total) end
    if not transformed then put(w, 'transformed', f.total) end
    close(id, status, results, f, 'complete', w, true, {}, false, unit_field)
    emit_many(id, 'completed', f.queue_name, f.pipeline)
    return 'complete'
  end
  redis.call('HSET', status, unpack(w))
  local missing = f.total - have
  if f.run >= f.most_runs then
    return fail(id, status, results, f, {'error', missing .. ' of ' .. f.total ..
      ' inputs have no record after ' .. f.run .. ' runs (their records were lost from Redis)'})
  end
  local queue = queue_of(f)
  clear_units(queue, KEYS[2], status, id)
  redis.call('HSET', status, 'state', 'queued', 'run', f.run + 1, 'units_done', 0,
             'stored', have, 'error', missing .. ' of ' .. f.total .. ' inputs had no ' ..
             'record when the job ended: running again for them')
  redis.call('ZADD', queue, place(now, f.priority), id)
  ended[#ended + 1] = id
  emit(id, 'retrying', f.queue_name, f.pipeline, {'error', missing .. ' of ' .. f.total ..
       ' inputs had no record', 'delay_ms', 0})
  return 'resumed'
end

-- a unit's lease field goes with it; the last unit's, with the job's ending (`close` drops
-- it with the envelope in one HDEL, `clear_units` with the others)
local function done(e, id, status, results, member, f, w)
  leaving[#leaving + 1] = member
  local count = f.done + 1
  put(w, 'units_done', count)
  put(w, 'held', f.held - 1)
  put_counters(status, e[9], e[7], w)
  if count < f.units then
    redis.call('HDEL', status, 'unit:' .. e[3])
    redis.call('HSET', status, unpack(w))
    return 'ok'
  end
  local fields = e[8]
  for i = 1, #fields do w[#w + 1] = fields[i] end
  return finish(id, status, results, f, w, 'unit:' .. e[3])
end

local function release(e, id, status, member, f, w)
  local tries = (tonumber(string.match(f.unit, ' (%d+)$')) or 1) - e[6]
  put(w, 'unit:' .. e[3], '- ' .. tries)
  put(w, 'held', f.held - 1)
  put_counters(status, e[9], 0, w)
  redis.call('HSET', status, unpack(w))
  released[#released + 1] = now + e[5]
  released[#released + 1] = member
  if e[5] > 0 and e[6] == 0 then
    emit(id, 'retrying', f.queue_name, f.pipeline, {'unit', e[3], 'delay_ms', e[5],
                                                    'error', e[8][2] or ''})
  end
  return 'released'
end

-- The ending of a small job, the common case: the only unit of a Client's job, done, with
-- every input's record, none failed or with a blob, no callback of its own. Written in a
-- straight line from the one read, it makes the writes the path through `done`, `finish` and
-- `close` makes for such a job, with less of Lua's work (no table of the job's fields, no
-- lists copied): about 6 us of Redis CPU a tiny job (benchmarks.script_cost). ``r``: what
-- `read` read (``READ[2]`` names the unit's field); ``stored``: the records written.
local function end_small(e, id, status, results, r, stored)
  local total = tonumber(r[6]) or 0
  local w = {'state', 'complete', 'finished_at', now / 1000,
             'units_done', (tonumber(r[3]) or 0) + 1,
             'held', (tonumber(r[5]) or 1) - 1, 'stored', (tonumber(r[21]) or 0) + stored,
             'fetched', total, 'transformed', total}
  local counters, n = e[9], #w
  for i = 1, #counters, 2 do
    local name = counters[i]
    if name ~= 'fetched' and name ~= 'transformed' then
      w[n + 1], w[n + 2], n = name, counters[i + 1], n + 2
    end
  end
  redis.call('HSET', status, unpack(w))
  redis.call('HDEL', status, READ[2], 'envelope')
  local ttl = tonumber(r[16]) or status_ttl
  redis.call('EXPIRE', status, ttl)
  redis.call('EXPIRE', results, ttl)
  queue_webhook(KEYS[5], KEYS[6], status, id, now, false)
  leaving[#leaving + 1] = id .. '#' .. e[3]
  ended[#ended + 1] = id
  emit_many(id, 'completed', r[15], r[19])
  return 'complete'
end

local function apply(e)
  local mode, id = e[1], e[2]
  local status = key(STATUS, id)
  local r = read(status, e[3])
  if not held_by(r[1], r[2], e[4]) then return 'lost' end
  local results, stored, failed, blob = key(RESULTS, id), 0, 0, false
  if e[10] then
    local blobs = function() return key(BLOBS, id) end
    local ok, n, bad, with_blob = pcall(write_records, results, blobs, e[10][1], e[10][2])
    if not ok then return 'unstored: ' .. tostring(n) end
    stored, failed, blob = n, bad, with_blob
  end
  if mode == 'done' and r[4] == '1' and stored > 0 and stored >= (tonumber(r[6]) or 0)
     and failed == 0 and not blob and e[7] == 1 and #e[8] == 0
     and not (r[8] or r[9] or r[10] or r[14] or r[20]) then
    return end_small(e, id, status, results, r, stored)
  end
  local f, w = fields_of(r), {}
  if e[10] then count_last(f, w, stored, failed, blob) end
  local member = id .. '#' .. e[3]
  if mode == 'done' then return done(e, id, status, results, member, f, w) end
  if mode == 'release' then return release(e, id, status, member, f, w) end
  local fields = e[8]  -- a failure: the counts of its records, its error and pipeline
  for i = 1, #fields do w[#w + 1] = fields[i] end
  return fail(id, status, results, f, w)
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
