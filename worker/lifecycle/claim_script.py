"""The claim's Lua script: take over lapsed units, then hand out ready work from every queue
served, earliest place first, as much as the worker has room for (`worker.lifecycle.claim`
calls it and reads its answer)."""

from __future__ import annotations

from producer.contract.scripts import CHUNKED, EMIT, NOW, PLACE, WAKE

ABORTS_KEPT_MS = 60_000  # how long a cancel stays in the abort set for workers to see
WINDOW_MAX = 1000  # queue entries one claim looks at, at most

# KEYS: first queue served, leases, running set, failed set, aborts, refused, its wake list,
#       pipelines registry, events, then (queue, its wake list) for each other queue served
# ARGV: lease ms, room (inputs), most units, wake tokens kept, worker name, token prefix,
#       unit size, aborts seen up to (ms), cached jobs (JSON object: id -> [run, enqueue ms]
#       of the envelope read: an id used again by another job has another enqueue time), result
#       ttl s, window, the pipelines this worker runs (JSON list, or * for all), the names of
#       the queues served (JSON list, in KEYS' order), events kept (SLUICE_EVENTS_MAXLEN),
#       the shard count and this shard (1 and 0 unsharded), the most inputs a job may have
#       (SLUICE_MAX_INPUTS_PER_JOB), then key templates (prefix, suffix): status, arq job,
#       inputs, results, blobs
# A job's total as its status hash holds it is taken only if it is a count of inputs up to
# that most (anyone may write the hash: "inf" or "1e12" there split a job into units without
# end, a script Redis cannot stop); else it is counted again from the job's inputs. A job of
# more inputs than that is not split: its one unit is handed out, and the worker fails it.
# A job written raw (its envelope at ``arq:job:{id}``) in a shard its id does not belong in
# (a producer that computed crc32(id) mod SLUICE_SHARDS wrongly) is refused, naming both:
# its keys are the shard's, but every later write looks for them in the id's own shard.
# A job whose run starts here gets a "started" event; one refused here, a "failed" event.
# The queues are read together, earliest place first (producer.contract.placement: a
# priority moves a job's place forward), so no queue served starves another.
# Work of a pipeline this worker does not run is left for a worker that does; one no worker
# of the namespace has ever registered is taken, and its job fails naming the pipeline.
# Returns {more, units, refused, aborts, now ms}: units a flat list of FIELDS values per unit
# (id, unit, first input, end input, token, try, units, total or -1, envelope or false,
# started at (s), run, counted, due ms, records stored); refused a flat list of (id, error)
# for the jobs failed at the claim; aborts a flat list of (id, ms) cancelled since ARGV[8];
# more = 1 when it stopped at the room or the unit limit with due work maybe left.
CLAIM = (
    NOW
    + CHUNKED
    + WAKE
    + PLACE
    + EMIT
    + """
local now = now_ms()
local lease_ms, room, most = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- the time a run starts, in s, as a string once: written and answered for every job started
-- (a number in a script's answer is cut to an integer, and formatting it per job costs)
local now_s, worker, token_prefix = tostring(now / 1000), ARGV[5], ARGV[6]
local unit_size, window = tonumber(ARGV[7]), tonumber(ARGV[11])
local cached = cjson.decode(ARGV[9])  -- job id -> {run, enqueue ms} this worker has read
local every, serves = ARGV[12] == '*', {}
if not every then
  for _, name in ipairs(cjson.decode(ARGV[12])) do serves[name] = true end
end
local queues, wakes, queue_names, serves_queue = {KEYS[1]}, {KEYS[7]}, cjson.decode(ARGV[13]), {}
for i = 10, #KEYS, 2 do
  queues[#queues + 1] = KEYS[i]
  wakes[#wakes + 1] = KEYS[i + 1]
end
for _, name in ipairs(queue_names) do serves_queue[name] = true end
local t = {}
local shards, this_shard, max_inputs = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
for i = 18, #ARGV, 2 do t[#t + 1] = {ARGV[i], ARGV[i + 1]} end
events_to(KEYS[9], ARGV[14])
local function key(n, id) return t[n][1] .. id .. t[n][2] end
local STATUS, ENVELOPE, INPUTS, RESULTS, BLOBS = 1, 2, 3, 4, 5

-- whether this worker has read the envelope of this run of this job (not of another job
-- that had the same id before it: deleted, expired or lost with Redis, and enqueued again)
local function is_cached(id, run, enqueued_at)
  local c = cached[id]
  return c ~= nil and c[1] == run
         and c[2] == math.floor((tonumber(enqueued_at) or 0) * 1000 + 0.5)
end

local out, refused, leased, started, handled = {}, {}, {}, {}, {}
local leaving = {}  -- per queue (its place in ``queues``): members that leave it
for q = 1, #queues do leaving[q] = {} end
local taken, count, seq = 0, 0, 0

local function full() return count >= most or (count > 0 and taken >= room) end

-- a job's total as the status hash holds it, if it is a count of inputs a job may have
local function total_of(raw)
  local n = tonumber(raw)
  if n and n >= 0 and n <= max_inputs and n == math.floor(n) then return n end
end

-- whether this worker is the one to take work of ``pipeline``: it runs it, or nobody does
-- (the job is taken to fail with the reason), or the job does not say (malformed: the same)
local function runs(pipeline)
  if every or type(pipeline) ~= 'string' or serves[pipeline] then return true end
  return redis.call('HEXISTS', KEYS[8], pipeline) == 0
end

local function valid_id(id)
  return #id <= 128 and string.find(id, '^[%w_%-][%w_%.%-]*$') ~= nil
end

-- CRC-32 (zlib's) of a string, as producer.contract.keys.shard_of computes it; bitwise, as
-- only raw jobs are checked (a Client places its jobs itself)
local function crc32(s)
  local c = -1
  for i = 1, #s do
    c = bit.bxor(c, string.byte(s, i))
    for _ = 1, 8 do
      c = bit.bxor(bit.rshift(c, 1), bit.band(0xEDB88320, -bit.band(c, 1)))
    end
  end
  c = bit.bnot(c)
  return c < 0 and c + 4294967296 or c
end

-- why a raw job cannot be in this shard, or nil
local function misplaced(id)
  if shards <= 1 then return nil end
  local own = crc32(id) % shards
  if own == this_shard then return nil end
  return 'job queued in shard ' .. this_shard .. ', but its id belongs in shard ' .. own ..
         ' (crc32(id) mod SLUICE_SHARDS=' .. shards .. '; docs/wire-format.md)'
end

-- a job's envelope: in its status hash (a Client wrote it there), else at ``arq:job:{id}``
-- (raw Redis commands, arq's client)
local function envelope_of(status, id, field)
  if field == nil then field = redis.call('HGET', status, 'envelope') end
  return field or redis.call('GET', key(ENVELOPE, id))
end

-- unit k of a job whose status fields are `f` (state, unit field, total, unit_size, units,
-- started_at, run, attempts, fetch_count, stored, held): a fresh token, the try counted, a
-- lease; written in one HSET with ``writes`` (the fields of a job starting)
local function hand_out(id, k, status, f, due, envelope, writes)
  local tries = 1
  if f[2] then tries = (tonumber(string.match(f[2], ' (%d+)$')) or 0) + 1 end
  -- held: units with a holder; a lapsed holder's unit was counted, a released one was not
  local held = tonumber(f[11]) or 0
  if not f[2] or string.sub(f[2], 1, 2) == '- ' then held = held + 1 end
  seq = seq + 1
  local token = token_prefix .. seq
  local attempts = math.max(tonumber(f[8] or '0') or 0, tries)
  writes = writes or {}
  local w = #writes
  writes[w + 1], writes[w + 2] = 'unit:' .. k, token .. ' ' .. tries
  writes[w + 3], writes[w + 4] = 'attempts', attempts
  writes[w + 5], writes[w + 6] = 'worker', worker
  writes[w + 7], writes[w + 8] = 'held', held
  redis.call('HSET', status, unpack(writes))
  leased[#leased + 1] = now + lease_ms
  leased[#leased + 1] = id .. '#' .. k
  local total, size = tonumber(f[3]) or -1, tonumber(f[4])
  local first = k * size
  local last = first + size
  if total >= 0 then last = math.min(total, last) end
  if envelope == nil then
    envelope = false
    if not is_cached(id, tonumber(f[7] or '1'), f[15]) then
      envelope = envelope_of(status, id) or false
    end
  end
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = id, k, first, last
  out[n + 5], out[n + 6], out[n + 7], out[n + 8] = token, tries, tonumber(f[5]), total
  out[n + 9], out[n + 10] = envelope, f[6] or now_s  -- a string (now_s is one)
  out[n + 11] = tonumber(f[7] or '1')
  out[n + 12], out[n + 13], out[n + 14] = f[9] and 1 or 0, due, tonumber(f[10] or '0') or 0
  taken = taken + math.max(1, last - first)
  count = count + 1
end

local FIELDS = {'state', '', 'total', 'unit_size', 'units', 'started_at', 'run', 'attempts',
                'fetch_count', 'stored', 'held', 'pipeline', 'queue', 'priority', 'enqueued_at'}
local function read(status, k)
  FIELDS[2] = 'unit:' .. k
  return redis.call('HMGET', status, unpack(FIELDS))
end

-- a unit whose lease lapsed, or that was handed back: take it over
local function take_over(member)
  local id, k = string.match(member, '^(.*)#(%d+)$')
  local status = id and key(STATUS, id)
  local f = id and read(status, k)
  if not id or f[1] ~= 'in_progress' or not f[2] then
    redis.call('ZREM', KEYS[2], member)  -- its job ended or was reset: a stale entry
    return
  end
  -- for a worker that runs its pipeline and serves its queue
  if not runs(f[12]) or not serves_queue[f[13] or 'default'] then return end
  hand_out(id, tonumber(k), status, f, now)
end

-- the next unit of a job split already: hand it out, and queue the one after it behind the
-- other due work (the turn of a big job's units among the jobs queued after it)
local function next_unit(member, id, k, due, q)
  local status = key(STATUS, id)
  local f = read(status, k)
  if f[1] == 'in_progress' and not runs(f[12]) then return end  -- for another worker
  local gone = leaving[q]
  gone[#gone + 1] = member
  if f[1] ~= 'in_progress' then return end  -- ended or cancelled: a stale entry
  if k + 1 < (tonumber(f[5]) or 0) then
    redis.call('ZADD', queues[q], place(now, f[14]), id .. '#' .. (k + 1))
  end
  hand_out(id, k, status, f, due - place(0, f[14]))
end

-- a job's inputs, as far as the claim can tell: the status hash (a Client wrote it), else the
-- envelope (raw Redis commands); the worker fails the job if neither says. ``f`` is what
-- `start` read: state, total, run, attempts, fetch_count, stored, enqueued_at, pipeline
local function describe(id, envelope, f)
  -- written without a Client (raw commands, arq's client): its ending writes arq's result
  local total, extra = total_of(f[2]), {'foreign', 1}
  local ok, job = pcall(cjson.decode, envelope)
  if not (ok and type(job) == 'table' and type(job.k) == 'table') then
    return total, extra, f[8]
  end
  if not total then
    if type(job.k.inputs) == 'table' then
      total = #job.k.inputs
    elseif job.k.inputs == nil or job.k.inputs == cjson.null then
      total = redis.call('LLEN', key(INPUTS, id))
      extra[#extra + 1] = 'inputs_list'; extra[#extra + 1] = 1
    end
    if total then extra[#extra + 1] = 'total'; extra[#extra + 1] = total end
  end
  if not f[7] and type(job.et) == 'number' and job.et > 0 then
    extra[#extra + 1] = 'enqueued_at'; extra[#extra + 1] = job.et / 1000
  end
  if not f[8] and type(job.k.pipeline) == 'string' then
    extra[#extra + 1] = 'pipeline'; extra[#extra + 1] = job.k.pipeline
  end
  return total, extra, f[8] or job.k.pipeline
end

-- The start of a small job, the common case: a Client's job queued for its first run, of one
-- unit, due now, of a pipeline this worker runs. Written in a straight line from `start`'s
-- read ``f``, it makes the writes and the answer `start` and `hand_out` make for such a job,
-- with less of Lua's work (no tables of fields built and copied): about 2 us of Redis CPU a
-- tiny job (benchmarks.script_cost against the general path, calls in turn).
local function start_small(id, due, q, status, f, total)
  local gone = leaving[q]
  gone[#gone + 1] = id
  seq = seq + 1
  local token = token_prefix .. seq
  redis.call('HSET', status, 'state', 'in_progress', 'started_at', now_s, 'units', 1,
             'unit_size', unit_size, 'unit:0', token .. ' 1',
             'attempts', math.max(tonumber(f[4]) or 0, 1), 'worker', worker, 'held', 1)
  redis.call('PERSIST', status)
  started[#started + 1] = id
  leased[#leased + 1] = now + lease_ms
  leased[#leased + 1] = id .. '#0'
  local envelope = f[11]
  if is_cached(id, 1, f[7]) then envelope = false end
  local n = #out  -- FIELDS, as `hand_out` writes them
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = id, 0, 0, total
  out[n + 5], out[n + 6], out[n + 7], out[n + 8] = token, 1, 1, total
  out[n + 9], out[n + 10], out[n + 11] = envelope, now_s, 1
  out[n + 12], out[n + 13] = f[5] and 1 or 0, due - place(0, f[9])
  out[n + 14] = tonumber(f[6] or '0') or 0
  taken = taken + math.max(1, total)
  count = count + 1
  emit_many(id, 'started', queue_names[q], f[8])
end

-- a job never claimed in this run: split it into units and hand out the first
local function start(id, due, q)
  local status = key(STATUS, id)
  local f = redis.call('HMGET', status, 'state', 'total', 'run', 'attempts', 'fetch_count',
                       'stored', 'enqueued_at', 'pipeline', 'priority', 'not_before', 'envelope')
  local total, mine = total_of(f[2]), runs(f[8])
  if f[1] == 'queued' and mine and f[11] and total and total <= unit_size and f[7] and f[8]
     and not f[3] and not f[10] then
    return start_small(id, due, q, status, f, total)
  end
  if f[8] and f[1] ~= 'cancelled' and not mine then return end  -- for another worker
  -- a deferred job of priority > 0 has an earlier place than its time: not yet
  if f[10] and f[1] ~= 'cancelled' and (tonumber(f[10]) or 0) > now then return end
  local gone = leaving[q]
  local envelope = envelope_of(status, id, f[11])
  if envelope and not f[11] then
    local wrong = misplaced(id)
    if wrong then return wrong end  -- refused by the caller
  end
  if not envelope or f[1] == 'cancelled' then
    gone[#gone + 1] = id
    redis.call('DEL', key(ENVELOPE, id))  -- expired, or cancelled: dropped, as arq does
    return
  end
  local extra, pipeline = {}, f[8]
  if not total or not f[7] or not f[8] then
    total, extra, pipeline = describe(id, envelope, f)
  end
  if not runs(pipeline) then return end  -- left queued for a worker that runs it
  gone[#gone + 1] = id
  local units = math.max(1, math.ceil((total or 1) / unit_size))
  if total and total > max_inputs then units = 1 end  -- too many: the worker fails the job
  local writes = {'state', 'in_progress', 'started_at', now_s, 'units', units,
                  'unit_size', unit_size}
  if f[3] then  -- a run after a retry or a resume: what the last one left is reset
    local stored = f[6] or 0
    local again = {'finished_at', '', 'error', '', 'units_done', 0, 'run', f[3],
                   'fetched', stored, 'transformed', stored}
    for i = 1, #again do writes[#writes + 1] = again[i] end
    -- the last ending gave its keys the result TTL (a cancel or a failure, then `retry`):
    -- they live as long as the run, as the status hash does, and get it again at its end
    redis.call('PERSIST', key(RESULTS, id))
    redis.call('PERSIST', key(BLOBS, id))
    redis.call('PERSIST', key(INPUTS, id))
  end
  for i = 1, #extra do writes[#writes + 1] = extra[i] end
  redis.call('PERSIST', status)
  started[#started + 1] = id
  if units > 1 then
    local parked = {}
    for u = 2, units - 1 do parked[#parked + 1] = '+inf'; parked[#parked + 1] = id .. '#' .. u end
    chunked('ZADD', queues[q], parked)
    redis.call('ZADD', queues[q], place(now, f[9]), id .. '#1')
    wake(wakes[q], units - 1, tonumber(ARGV[4]))  -- idle workers: units for you
  end
  -- the unit's view of the job as it starts: a new run, no unit held yet
  local g = {'in_progress', false, total or -1, unit_size, units, now_s, f[3] or 1, f[4],
             f[5], f[6], 0}
  local sent = envelope
  if is_cached(id, tonumber(g[7]), f[7]) then sent = false end
  hand_out(id, 0, status, g, due - place(0, f[9]), sent, writes)
  emit_many(id, 'started', queue_names[q], pipeline)
end

-- a queue entry that cannot be claimed: it leaves the queue, its job goes to the failed set
local function refuse(member, id, err, q)
  local gone = leaving[q]
  gone[#gone + 1] = member
  redis.call('ZADD', KEYS[4], now, id)
  redis.call('HSET', KEYS[6], id, err)
  redis.call('EXPIRE', KEYS[6], ARGV[10])
  refused[#refused + 1] = id
  refused[#refused + 1] = err
  emit(id, 'failed', queue_names[q], nil, {'error', err})
end

local function claim(member, due, q)
  local id, k
  if string.find(member, '#', 1, true) then id, k = string.match(member, '^(.*)#(%d+)$') end
  if id then
    if valid_id(id) then return next_unit(member, id, tonumber(k), due, q) end
  elseif valid_id(member) then
    local wrong = start(member, due, q)
    if not wrong then return end
    redis.call('DEL', key(ENVELOPE, member))
    return refuse(member, member, wrong, q)
  end
  redis.call('DEL', key(ENVELOPE, id or member))
  refuse(member, id or member, 'invalid job id: use 1-128 letters, digits, _ . - (not first .)',
         q)
end

local lapsed, due = {}, {}
if most > 0 then  -- a window, not ``most``: lapsed units of other pipelines are passed over
  lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, window)
end
for _, member in ipairs(lapsed) do
  if full() then break end
  handled[member] = true
  local ok, err = pcall(take_over, member)
  if not ok then
    redis.call('ZREM', KEYS[2], member)
    refused[#refused + 1] = member
    refused[#refused + 1] = tostring(err)
  end
end
-- the due work, a window at a time from every queue served, earliest place first: the
-- next window only when this one was passed over (other pipelines' work, stale entries),
-- and never more than WINDOW_MAX entries of a queue in all
local offset, open, seen = 0, {}, 0
for q = 1, #queues do open[q] = true end
while not full() and seen < WINDOW_MAX do
  local batch, reading = {}, false
  for q = 1, #queues do
    if open[q] then
      reading = true
      local got = redis.call('ZRANGEBYSCORE', queues[q], '-inf', now, 'WITHSCORES', 'LIMIT',
                             offset, window)
      for i = 1, #got, 2 do batch[#batch + 1] = {tonumber(got[i + 1]), got[i], q} end
      open[q] = #got == 2 * window
    end
  end
  if not reading then break end
  if #queues > 1 then
    table.sort(batch, function(a, b)
      if a[1] ~= b[1] then return a[1] < b[1] end
      return a[2] < b[2]
    end)
  end
  for _, e in ipairs(batch) do
    if full() then break end
    local member, due, q = e[2], e[1], e[3]
    if not handled[member] then
      handled[member] = true
      local ok, err = pcall(claim, member, due, q)
      if not ok then
        -- one of its keys is unusable (a wrong type): it fails alone, into the failed set
        refuse(member, string.match(member, '^(.*)#%d+$') or member, tostring(err), q)
      end
    end
  end
  offset = offset + window
  seen = seen + window
end
for q = 1, #queues do chunked('ZREM', queues[q], leaving[q]) end
chunked('ZADD', KEYS[2], leased)
chunked('SADD', KEYS[3], started)
local aborts = {}
if redis.call('ZCARD', KEYS[5]) > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - ABORTS_KEPT_MS)
  aborts = redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. ARGV[8], '+inf', 'WITHSCORES')
end
local more = (most > 0 and full()) and 1 or 0
flush_events()
return {more, out, refused, aborts, now}
""".replace("ABORTS_KEPT_MS", str(ABORTS_KEPT_MS)).replace("WINDOW_MAX", str(WINDOW_MAX))
)
FIELDS = 14
