"""Lua scripts: each one a step that must be atomic in Redis.

The keys of each call share one hash tag (its shard's, redis/buffer.py), so that they stay
in one slot of a Redis Cluster.

Two rules every script here keeps, because Redis does not roll back a script that fails
midway:

- Everything that can fail (reading, counting, building argument lists) comes before the
  first write. Variable-size lists go to Redis in slices (``chunked``): Lua's ``unpack``
  fails past about 8,000 values ("too many results to unpack").
- With ``maxmemory`` reached (``noeviction``), Redis refuses a script's first write if
  that command may grow memory (``denyoom``: SET, HSET, RPUSH, INCR, ...), and lets every
  later write through (Redis 6.2 and 7.x: the script is then "dirty" and cannot be
  stopped halfway). SHIP starts with a deny-oom SET, so a full Redis refuses a shipment
  before it changes anything (the producer's fallback takes it). The scripts that free
  memory (CLAIM, and what parks or replays) start with a DEL or a ZREM instead, which a
  full Redis does not refuse: the drain, the only thing that empties Redis, works on a
  full Redis. They move data rather than add it.
"""

from __future__ import annotations

from redis.commands.core import AsyncScript, Script

from django_pageviews.toplists import LIST_BUCKETS
from django_pageviews.wire import DIM_BUCKETS, TOTAL

# At most this many values per command built with unpack (even: field/value pairs).
UNPACK_CHUNK = 1000

CHUNKED = f"""
local function chunked(command, key, values, first, last)
  for i = first, last, {UNPACK_CHUNK} do
    redis.call(command, key, unpack(values, i, math.min(i + {UNPACK_CHUNK} - 1, last)))
  end
end
"""

# The live totals' layout (wire.dimension_slot, decision 28): the total ``t`` is a field of
# the ``dims`` hash; every other dimension is an 8-byte field (the first 8 bytes of its
# name's SHA-1) of one of DIM_BUCKETS small hashes ``dims:<n>`` (n: that field's first 4
# bytes modulo DIM_BUCKETS), which Redis keeps in its compact listpack (ziplist) encoding.
# Full names in ``dims`` itself are the layout of earlier versions, still read and
# drained: ``dim_take`` takes a batch out of them first (never more than they hold), then
# out of the buckets.
DIMS = f"""
local slots = {{}}  -- name -> its bucket and field, computed once per call
local function dim_bucket(name)
  local slot = slots[name]
  if not slot then
    local h = redis.sha1hex(name)
    local a = tonumber(string.sub(h, 1, 8), 16)
    slot = {{a % {DIM_BUCKETS}, struct.pack('>I4I4', a, tonumber(string.sub(h, 9, 16), 16))}}
    slots[name] = slot
  end
  return slot[1], slot[2]
end
local function dim_slot(dims, name)
  local bucket, field = dim_bucket(name)
  return dims .. ':' .. bucket, field
end
local function dim_add(dims, name, n)
  if name == '{TOTAL}' then return redis.call('HINCRBY', dims, name, n) end
  local key, field = dim_slot(dims, name)
  return redis.call('HINCRBY', key, field, n)
end
-- Whether ``dims`` still holds totals by full name (an earlier version's layout).
local function dim_old(dims)
  return redis.call('HLEN', dims) > redis.call('HEXISTS', dims, '{TOTAL}')
end
-- Takes n views of total ``name`` away; ``field``: its digest if the caller computed it.
local function dim_take(dims, old, name, n, field)
  if old or name == '{TOTAL}' then
    local held = tonumber(redis.call('HGET', dims, name) or '0')
    if held > 0 or name == '{TOTAL}' then
      local take = name == '{TOTAL}' and n or math.min(held, n)
      if redis.call('HINCRBY', dims, name, -take) <= 0 then redis.call('HDEL', dims, name) end
      n = n - take
    end
  end
  if n ~= 0 then
    local key
    if field and #field == 8 then
      key = dims .. ':' .. (struct.unpack('>I4', field) % {DIM_BUCKETS})
    else
      key, field = dim_slot(dims, name)
    end
    if redis.call('HINCRBY', key, field, -n) <= 0 then redis.call('HDEL', key, field) end
  end
end
local function dim_get(dims, old, name)
  local total, found = 0, false
  if old or name == '{TOTAL}' then
    local v = redis.call('HGET', dims, name)
    if v then total, found = total + tonumber(v), true end
  end
  if name ~= '{TOTAL}' then
    local key, field = dim_slot(dims, name)
    local v = redis.call('HGET', key, field)
    if v then total, found = total + tonumber(v), true end
  end
  if found then return tostring(total) end
  return false
end
local function dim_clear(dims)
  for b = 0, {DIM_BUCKETS - 1} do redis.call('DEL', dims .. ':' .. b) end
end
"""

# The per-day lists' layout (toplists.py, decision 28): list ``name`` is spread over
# LIST_BUCKETS sorted sets ``top:<name>:<n>``, a member's n being the bucket of its live
# total (the URL's, view name's or object's: DIMS, whose digest a shipment computes
# anyway) modulo LIST_BUCKETS; each set stays small enough for Redis's compact encoding.
# ``top:<name>`` itself is an earlier version's whole list: a member it holds stays there
# (shipments add to it there, ACK takes it out there) until it leaves, so that each member
# is in exactly one set and a list's top is the merge of its sets' tops. Needs DIMS.
LISTS = f"""
local US = '\\31'
local old_lists = {{}}  -- list name -> whether its earlier version's set exists (it can
                        -- only go away during a call)
-- The set holding ``member``'s views in list ``name``; ``bucket``: its bucket if the
-- caller computed it (toplists.member_bucket).
local function list_key(top, name, member, bucket)
  local old = top .. ':' .. name
  if old_lists[name] == nil then old_lists[name] = redis.call('EXISTS', old) == 1 end
  if old_lists[name] and redis.call('ZSCORE', old, member) then return old end
  if bucket then return old .. ':' .. bucket end
  local kind, dim = string.sub(name, 1, -12), nil
  if kind == 'u' or kind == 'v' then
    dim = kind .. member
  else  -- o|<model>|<field>
    local model, field = string.match(kind, '^o|([^|]*)|(.*)$')
    dim = 'o' .. model .. US .. field .. US .. member
  end
  return old .. ':' .. (dim_bucket(dim) % {LIST_BUCKETS})
end
local function list_clear(top, name)
  redis.call('DEL', top .. ':' .. name)
  for b = 0, {LIST_BUCKETS - 1} do redis.call('DEL', top .. ':' .. name .. ':' .. b) end
end
"""

# KEYS: pending, dims, events, sent-marker, oldest, counters, early-lock, epoch,
#       list registry, and, to register a shard count (shard 0 only), the shard registry
# ARGV: marker ttl, now, early threshold, early interval ms, n fields, n counters,
#       shipment id, then field/count pairs, counter/count pairs, then raw-event list
#       elements (redis/packing.py: one per shipment), then, with the shard registry, the
#       shard count it is raised to (decision 42; a buffer of one shard sends neither).
# Idempotent per shipment id (the sent marker): a retried shipment whose first attempt
# did reach Redis is not added twice. The first shipment into an empty Redis names its
# epoch (redis/restore.py: claim sequence numbers are compared within one epoch).
# The live totals (``dims``) and per-day lists of each count field are derived here, as
# wire.dimensions and toplists.entries name them (ACK subtracts what those give): the
# producer sends each page once instead of ~13 times, which was most of its shipping
# CPU and bytes. A skipped-requests field (wire.skipped_field) adds to neither.
SHIP = (
    CHUNKED
    + DIMS
    + LISTS
    + """
local US, RS = '\\31', '\\30'
local nf, nc = tonumber(ARGV[5]), tonumber(ARGV[6])
local dims, lists, listed = {}, {}, {}
local function add(t, k, n) t[k] = (t[k] or 0) + n end
local function add_list(name, member, n)
  lists[name] = lists[name] or {}
  add(lists[name], member, n)
  add(listed, name, n)
end
for i = 8, 6 + 2 * nf, 2 do
  local field, n = ARGV[i], tonumber(ARGV[i + 1])
  local p, start = {}, 1
  while true do
    local stop = string.find(field, US, start, true)
    if not stop then p[#p + 1] = string.sub(field, start) break end
    p[#p + 1] = string.sub(field, start, stop - 1)
    start = stop + 1
  end
  if #p == 6 and p[1] ~= 'skipped' then
    local day, url, view, model, fld, value = p[1], p[2], p[3], p[4], p[5], p[6]
    local u, v = 'u' .. url, 'v' .. view
    add(dims, 't', n); add(dims, u, n); add(dims, v, n); add(dims, u .. RS .. v, n)
    add_list('u|' .. day, url, n)
    if view ~= '' then add_list('v|' .. day, view, n) end
    if model ~= '' then
      local o = 'o' .. model .. US .. fld .. US .. value
      add(dims, o, n); add(dims, o .. RS .. u, n); add(dims, o .. RS .. v, n)
      add(dims, o .. RS .. u .. RS .. v, n)
      add_list('o|' .. model .. '|' .. fld .. '|' .. day, value, n)
    end
  end
end
local last = #ARGV
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[1]) then return {-1, 0} end
if #KEYS == 10 then
  if tonumber(redis.call('GET', KEYS[10]) or '1') < tonumber(ARGV[last]) then
    redis.call('SET', KEYS[10], ARGV[last])
  end
  last = last - 1
end
local i = 8
for _ = 1, nf do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nc do redis.call('HINCRBY', KEYS[6], ARGV[i], ARGV[i + 1]); i = i + 2 end
for dim, n in pairs(dims) do dim_add(KEYS[2], dim, n) end
for name, members in pairs(lists) do
  for member, n in pairs(members) do
    redis.call('ZINCRBY', list_key(KEYS[9], name, member), -n, member)
  end
end
for name, n in pairs(listed) do redis.call('ZINCRBY', KEYS[9], n, name) end
if i <= last then chunked('RPUSH', KEYS[3], ARGV, i, last) end
if nf > 0 then redis.call('SET', KEYS[5], ARGV[2], 'NX') end
redis.call('SET', KEYS[8], ARGV[7], 'NX')
local total = tonumber(redis.call('HGET', KEYS[2], 't') or '0')
local threshold = tonumber(ARGV[3])
local early = 0
if threshold > 0 and total >= threshold then
  if redis.call('SET', KEYS[7], '1', 'NX', 'PX', ARGV[4]) then early = 1 end
end
return {total, early}
"""
)

# KEYS: pending, events, claims, chunk, event chunk, claim sequence, oldest, claim marks,
#       epoch
# ARGV: n, now, batch id, then the epoch and claim sequence number this process saw last
# Refuses (-1) a Redis whose sequence went below what this process saw in the same epoch:
# restored from an old snapshot during a drain, its pending views are not claimed again.
# Moves up to n count fields and the raw events of up to n views (whole list elements, at
# least one: an element holds a shipment's events, its header their number, redis/packing.py)
# into the batch's own keys and records the claim with its mark (epoch and claim
# sequence number, committed with the batch: see redis/restore.py); a flusher that dies leaves
# the claim for cleanup to replay or acknowledge.
# Returns the claim's mark ("epoch:seq"), 0 when there was nothing to claim, -2 (claiming
# nothing) while a live read holds new claims off (HOLD).
CLAIM = (
    CHUNKED
    + """
if redis.call('EXISTS', KEYS[6] .. ':hold') == 1 then return -2 end
if ARGV[4] ~= '' and redis.call('GET', KEYS[9]) == ARGV[4]
   and tonumber(redis.call('GET', KEYS[6]) or '0') < tonumber(ARGV[5]) then
  return -1
end
local n = tonumber(ARGV[1])
local fields, cursor = {}, '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', n)
  cursor = page[1]
  for _, x in ipairs(page[2]) do fields[#fields + 1] = x end
until cursor == '0' or #fields >= 2 * n
local names, moved, seen = {}, {}, {}
for j = 1, math.min(#fields, 2 * n), 2 do
  if not seen[fields[j]] then
    seen[fields[j]] = true
    names[#names + 1] = fields[j]
    moved[#moved + 1] = fields[j]
    moved[#moved + 1] = fields[j + 1]
  end
end
local events, views = {}, 0
while views < n do
  local page = redis.call('LRANGE', KEYS[2], #events, #events + math.min(n - views, 256) - 1)
  if #page == 0 then break end
  for _, e in ipairs(page) do
    local v = tonumber(string.match(e, '^#(%d+):')) or 1  -- an old JSON element: 1 view
    if #events > 0 and views + v > n then views = n break end
    events[#events + 1] = e
    views = views + v
  end
end
redis.call('DEL', KEYS[4], KEYS[5])  -- the first write: never refused by a full Redis
if #names > 0 then
  chunked('HSET', KEYS[4], moved, 1, #moved)
  chunked('HDEL', KEYS[1], names, 1, #names)
end
if #events > 0 then
  chunked('RPUSH', KEYS[5], events, 1, #events)
  redis.call('LTRIM', KEYS[2], #events, -1)
end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[7]) end
for _, id in ipairs(redis.call('HKEYS', KEYS[8])) do  -- marks of batches since acknowledged
  if not redis.call('ZSCORE', KEYS[3], id) then redis.call('HDEL', KEYS[8], id) end
end
if #names == 0 and #events == 0 then return 0 end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
local seq = redis.call('INCR', KEYS[6])
redis.call('SET', KEYS[9], ARGV[3], 'NX')
local mark = redis.call('GET', KEYS[9]) .. ':' .. seq
redis.call('HSET', KEYS[8], ARGV[3], mark)
return mark
"""
)

# KEYS: dims, claims, chunk, event chunk, attempts (left by earlier development versions),
#       list registry, staged arguments
# ARGV: batch id, n dims, then dim/digest/count triples to subtract (the digest: the
#       8-byte field of wire.dimension_slot, '' for the total), then list/member/count/set
#       quadruples to subtract (toplists.py: the set is member_bucket); or batch id, n
#       dims, STAGED: those are in the staged-arguments list (a batch of many distinct
#       pages: more than Redis 6.2 takes in one command, see redis_buffer.ack). The drain
#       computes the digests (hashlib): Redis, single-threaded, need not.
# Runs once per batch however often it is called: only the call that removes the claim
# subtracts the batch from the live totals and lists.
ACK = (
    DIMS
    + LISTS
    + """
local A = ARGV
if #ARGV == 3 and ARGV[3] == 'staged' then
  A = {ARGV[1], ARGV[2]}
  for _, v in ipairs(redis.call('LRANGE', KEYS[7], 0, -1)) do A[#A + 1] = v end
end
if redis.call('ZREM', KEYS[2], A[1]) == 0 then
  redis.call('DEL', KEYS[7])
  return 0
end
redis.call('DEL', KEYS[7])
local lists = 3 + 3 * tonumber(A[2])
local old = dim_old(KEYS[1])
for i = 3, lists - 1, 3 do dim_take(KEYS[1], old, A[i], tonumber(A[i + 2]), A[i + 1]) end
local listed = {}
for i = lists, #A, 4 do
  local list = list_key(KEYS[6], A[i], A[i + 1], tonumber(A[i + 3]))
  if tonumber(redis.call('ZINCRBY', list, A[i + 2], A[i + 1])) >= 0 then
    redis.call('ZREM', list, A[i + 1])
  end
  listed[A[i]] = (listed[A[i]] or 0) + tonumber(A[i + 2])
end
for name, n in pairs(listed) do
  if tonumber(redis.call('ZINCRBY', KEYS[6], -n, name)) <= 0 then
    redis.call('ZREM', KEYS[6], name)
  end
end
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('HDEL', KEYS[5], A[1])
return 1
"""
)

# KEYS: dims, claims, claim sequence, shard registry (buffer.py: set in shard 0 only), epoch
# ARGV: chunk key prefix, then the dimensions asked for
# One consistent picture for a live read: totals, open claims with their counts, the
# claim sequence number (a reader re-checks it after reading the database, or asks the
# database whether a later claim of the same epoch was committed: live.py) and the
# epoch (nil before the first shipment into an empty Redis). A
# dimension's total is its bucket's field plus, while an earlier version's totals are
# still there, its field by full name (DIMS); nil when it has neither.
SNAPSHOT = (
    DIMS
    + """
local values = {}
local old = dim_old(KEYS[1])
for i = 2, #ARGV do values[i - 1] = dim_get(KEYS[1], old, ARGV[i]) end
local claims = redis.call('ZRANGE', KEYS[2], 0, -1)
local chunks = {}
for i, id in ipairs(claims) do chunks[i] = redis.call('HGETALL', ARGV[1] .. id) end
return {values, claims, chunks, redis.call('GET', KEYS[3]) or '0', redis.call('GET', KEYS[4]),
        redis.call('GET', KEYS[5])}
"""
)

# KEYS: list registry, claims, claim sequence, shard registry (as SNAPSHOT)
# ARGV: chunk key prefix, list name prefix, first day, last day ('' for an open end), c,
#       work budget, then kind/member/bucket triples (toplists.member_bucket)
# For reads by day (toplists.py): of every list whose name starts with the prefix and whose
# day is in range, its name and the first c entries of each of its sets (no merge here:
# the caller merges them, and takes its bound from each set's last entry); the scores of
# the members asked for, in every list of their kind, in the order asked (nil when
# absent); while the budget lasts, (member, score) of the members of the tops read in the
# other lists of their kind (a member's bucket is the set it was read from); then the open
# claims with their counts, the claim sequence number, the work done (entries read plus
# members looked up), and last the shard registry, as SNAPSHOT. Bounded (decision 43):
# when what must be done (c entries of every set of every list, every member asked in
# every list of its kind) could exceed the budget, it reads nothing and answers
# {'over', that work, the shard registry}. A buffer in shards is read with one call per
# shard (redis/snapshots.py), each with its own budget.
SNAPSHOT_LISTS = (
    DIMS
    + LISTS
    + f"""
local c, budget = tonumber(ARGV[5]), tonumber(ARGV[6])
local registry = redis.call('ZRANGE', KEYS[1], 0, -1)
local work = #registry
local names = {{}}
for _, name in ipairs(registry) do
  local day = string.sub(name, -10)
  if string.sub(name, 1, #ARGV[2]) == ARGV[2] and (ARGV[3] == '' or day >= ARGV[3])
      and (ARGV[4] == '' or day <= ARGV[4]) then
    names[#names + 1] = name
  end
end
-- kind -> the members asked and their buckets (member, bucket, ...), and, where tops are
-- looked up in other lists, kind -> member -> true
local wanted, counts, asked = {{}}, {{}}, {{}}
local crossing = c > 0 and #names > 1
for i = 7, #ARGV, 3 do
  local kind, member = ARGV[i], ARGV[i + 1]
  local w, n = wanted[kind], counts[kind]
  if not w then w, n = {{}}, 0; wanted[kind], asked[kind] = w, {{}} end
  w[n + 1], w[n + 2] = member, tonumber(ARGV[i + 2])
  counts[kind] = n + 2
  if crossing then asked[kind][member] = true end
end
local need = work
for _, name in ipairs(names) do
  need = need + 1 + {LIST_BUCKETS + 1} * c + (counts[string.sub(name, 1, -12)] or 0) / 2
end
if need > budget then return {{'over', need, redis.call('GET', KEYS[4])}} end
-- Per list: its key (an earlier version's whole set), whether that set exists, its sets.
local lists, olds, sets = {{}}, {{}}, {{}}
for j, name in ipairs(names) do
  lists[j] = KEYS[1] .. ':' .. name
  olds[j] = redis.call('EXISTS', lists[j]) == 1
  work = work + 1
  sets[j] = {{}}
  for b = 0, {LIST_BUCKETS - 1} do sets[j][b] = lists[j] .. ':' .. b end
end
-- A member's score in list j (false when absent), ``bucket`` its set (nil: unknown): in
-- the earlier version's set if it is there (LISTS), else in its bucket's; counted.
local function score(j, member, bucket)
  if olds[j] then
    work = work + 1
    local found = redis.call('ZSCORE', lists[j], member)
    if found then return found end
  end
  work = work + 1
  if bucket then return redis.call('ZSCORE', sets[j][bucket], member) end
  return redis.call('ZSCORE', list_key(KEYS[1], names[j], member), member)
end
local tops, own = {{}}, {{}}  -- per list: its sets' first entries; member -> score, bucket
for j in ipairs(names) do
  local parts, mine = {{}}, {{}}
  for b = -1, c > 0 and {LIST_BUCKETS - 1} or -2 do  -- b = -1: an earlier version's set
    local part = redis.call('ZRANGE', sets[j][b] or lists[j], 0, c - 1, 'WITHSCORES')
    work = work + #part / 2
    for m = 1, #part, 2 do mine[part[m]] = {{part[m + 1], b}} end
    parts[#parts + 1] = part
  end
  tops[j], own[j] = parts, mine
end
local scores, cross = {{}}, {{}}
for j, name in ipairs(names) do
  local kind = string.sub(name, 1, -12)
  local w, mine, got = wanted[kind] or {{}}, own[j], {{}}
  for m = 1, counts[kind] or 0, 2 do
    local entry = mine[w[m]]
    if entry then got[(m + 1) / 2] = entry[1] else got[(m + 1) / 2] = score(j, w[m], w[m + 1]) end
  end
  scores[j], cross[j] = got, {{}}
end
for rank = 1, c do
  for j, name in ipairs(names) do
    local kind = string.sub(name, 1, -12)
    for _, part in ipairs(tops[j]) do
      local member = part[2 * rank - 1]
      if member and not (asked[kind] and asked[kind][member]) then
        local bucket = own[j][member][2]
        for i, other in ipairs(names) do
          if i ~= j and work < budget and not own[i][member]
              and string.sub(other, 1, -12) == kind then
            local found = score(i, member, bucket >= 0 and bucket or nil)
            own[i][member] = {{found, bucket}}
            local pairs_ = cross[i]
            pairs_[#pairs_ + 1], pairs_[#pairs_ + 2] = member, found
          end
        end
      end
    end
  end
end
local claims = redis.call('ZRANGE', KEYS[2], 0, -1)
local chunks = {{}}
for i, id in ipairs(claims) do chunks[i] = redis.call('HGETALL', ARGV[1] .. id) end
local seq, shards = redis.call('GET', KEYS[3]) or '0', redis.call('GET', KEYS[4])
return {{names, tops, scores, cross, claims, chunks, seq, work, shards}}
"""
)

# KEYS: hold   ARGV: expiry in ms
# A live read holds new claims off while it makes its database snapshot agree with Redis;
# holds of several readers add up, and a reader that dies lets its hold expire. The first
# write is a PEXPIRE, which a full Redis does not refuse (see CLAIM): a read during the
# drain of a full Redis must not fail (it would fall back to the database alone).
HOLD = """
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n
"""

# KEYS: hold
# Its first write is a DEL or a PEXPIRE (never refused by a full Redis), as HOLD's.
RELEASE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 1 then redis.call('DEL', KEYS[1]) return 1 end
redis.call('PEXPIRE', KEYS[1], math.max(redis.call('PTTL', KEYS[1]), 1))
redis.call('DECR', KEYS[1])
return 1
"""

# KEYS: claim sequence, epoch, pending, events, dims, claims, oldest, restored groups,
#       group's counts, group's events, group's info, list registry
# ARGV: claim sequence and epoch as the caller read them, the database's high-water mark,
#       the claim sequence to continue from, group id, now, n open claims, their ids,
#       n dim values, the open claims' dim/count pairs, then their list/member/count
#       triples
# A Redis that went back in time (redis/restore.py): what is pending moves aside as one
# "restored" group, the live totals and lists become those of the open claims, and the claim
# sequence continues above the database's. Returns 1 (parked), 0 (nothing pending), or
# -1 when the claim sequence, epoch or open claims changed since the caller read them.
PARK = (
    CHUNKED
    + DIMS
    + LISTS
    + """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return -1 end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then return -1 end
local n = tonumber(ARGV[7])
local claims = redis.call('ZRANGE', KEYS[6], 0, -1)
if #claims ~= n then return -1 end
local open = {}
for _, id in ipairs(claims) do open[id] = true end
for i = 8, 7 + n do if not open[ARGV[i]] then return -1 end end
local parked = redis.call('EXISTS', KEYS[3]) + redis.call('EXISTS', KEYS[4]) > 0
redis.call('DEL', KEYS[5], KEYS[9], KEYS[10], KEYS[11])  -- the first write (see CLAIM)
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[9]) end
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('RENAME', KEYS[4], KEYS[10]) end
redis.call('DEL', KEYS[7])
dim_clear(KEYS[5])
local nd = tonumber(ARGV[8 + n])
for i = 9 + n, 8 + n + nd, 2 do dim_add(KEYS[5], ARGV[i], ARGV[i + 1]) end
for _, name in ipairs(redis.call('ZRANGE', KEYS[12], 0, -1)) do list_clear(KEYS[12], name) end
redis.call('DEL', KEYS[12])
for i = 9 + n + nd, #ARGV, 3 do
  redis.call('ZINCRBY', list_key(KEYS[12], ARGV[i], ARGV[i + 1]), -tonumber(ARGV[i + 2]),
             ARGV[i + 1])
  redis.call('ZINCRBY', KEYS[12], ARGV[i + 2], ARGV[i])
end
redis.call('SET', KEYS[1], ARGV[4])
if not parked then return 0 end
redis.call('HSET', KEYS[11], 'parked_at', ARGV[6], 'redis_seq', ARGV[1],
           'database_seq', ARGV[3], 'epoch', ARGV[2])
redis.call('ZADD', KEYS[8], ARGV[6], ARGV[5])
return 1
"""
)

# KEYS: restored groups, group's counts, group's events, group's info, claims, chunk,
#       event chunk, dims, claim sequence, claim marks, epoch, list registry
# ARGV: group id, batch id, claim time, the group's slices replayed so far (as the caller
#       read them), n group fields taken, n group list elements taken, n count values, n dim
#       values, n list values, then the group fields taken, the count field/count pairs
#       to replay, their dim/count pairs, their list/member/count triples, and the raw
#       events to replay
# Hands one slice of a restored group back to the drain as an ordinary claim (old enough
# for the next cleanup to write it): the fields and first events taken leave the group,
# which goes once nothing is left. A group is replayed in slices of at most BATCH_SIZE
# fields and events (redis/restore_replay.py): in one call, a big group would pass Redis 6.2's
# limit of 1,048,576 arguments per command, and become one huge transaction. Returns
# {-1} when another replay took a slice since the caller read the group, {0} when the
# group is gone, else {1 (more left) or 2 (the group is done), 1 if a claim was made}.
REPLAY = (
    CHUNKED
    + DIMS
    + LISTS
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {0} end
if (redis.call('HGET', KEYS[4], 'replayed') or '0') ~= ARGV[4] then return {-1} end
local nf, ne = tonumber(ARGV[5]), tonumber(ARGV[6])
local nc, nd, nl = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local c = 10 + nf  -- the first count pair
local first = c + nc + nd + nl  -- the first raw event
redis.call('DEL', KEYS[6], KEYS[7])  -- the first write (see CLAIM)
redis.call('HINCRBY', KEYS[4], 'replayed', 1)
if nf > 0 then chunked('HDEL', KEYS[2], ARGV, 10, c - 1) end
if ne > 0 then redis.call('LTRIM', KEYS[3], ne, -1) end
local left = 1
if redis.call('EXISTS', KEYS[2]) + redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[4])
  left = 2
end
if nc == 0 and first > #ARGV then return {left, 0} end
if nc > 0 then chunked('HSET', KEYS[6], ARGV, c, c + nc - 1) end
for i = c + nc, c + nc + nd - 1, 2 do dim_add(KEYS[8], ARGV[i], ARGV[i + 1]) end
for i = c + nc + nd, first - 1, 3 do
  redis.call('ZINCRBY', list_key(KEYS[12], ARGV[i], ARGV[i + 1]), -tonumber(ARGV[i + 2]),
             ARGV[i + 1])
  redis.call('ZINCRBY', KEYS[12], ARGV[i + 2], ARGV[i])
end
if first <= #ARGV then chunked('RPUSH', KEYS[7], ARGV, first, #ARGV) end
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[2])
local seq = redis.call('INCR', KEYS[9])
redis.call('SET', KEYS[11], ARGV[2], 'NX')
redis.call('HSET', KEYS[10], ARGV[2], redis.call('GET', KEYS[11]) .. ':' .. seq)
return {left, 1}
"""
)

# KEYS: a raw-event list   ARGV: none
# The views a raw-event list holds (redis/packing.py: the header of each element, 1 for an
# element of the previous version), counted in Redis a page at a time: a backlog's list
# can hold hundreds of megabytes, which a status report need not fetch. Writes nothing.
COUNT_VIEWS = """
local total, first = 0, 0
while true do
  local page = redis.call('LRANGE', KEYS[1], first, first + 999)
  for _, e in ipairs(page) do total = total + (tonumber(string.match(e, '^#(%d+):')) or 1) end
  if #page < 1000 then return total end
  first = first + 1000
end
"""

ship = Script(None, SHIP.encode())  # type: ignore[arg-type]
aship = AsyncScript(None, SHIP.encode())  # type: ignore[arg-type]
claim = Script(None, CLAIM.encode())  # type: ignore[arg-type]
ack = Script(None, ACK.encode())  # type: ignore[arg-type]
snapshot = Script(None, SNAPSHOT.encode())  # type: ignore[arg-type]
snapshot_lists = Script(None, SNAPSHOT_LISTS.encode())  # type: ignore[arg-type]
hold = Script(None, HOLD.encode())  # type: ignore[arg-type]
release = Script(None, RELEASE.encode())  # type: ignore[arg-type]
park = Script(None, PARK.encode())  # type: ignore[arg-type]
replay = Script(None, REPLAY.encode())  # type: ignore[arg-type]
count_views = Script(None, COUNT_VIEWS.encode())  # type: ignore[arg-type]

# KEYS: set-aside chunk, set-aside event chunk, set-aside ids
# ARGV: id, now, n fields, then field/count pairs, then raw events (one record: a few)
# Sets aside one record the database refuses; doing it again leaves the same keys. Its
# first write is a DEL, so it also runs on a full Redis (see CLAIM).
SET_ASIDE = """
redis.call('DEL', KEYS[1], KEYS[2])
local i = 4
for _ = 1, tonumber(ARGV[3]) do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
if i <= #ARGV then redis.call('RPUSH', KEYS[2], unpack(ARGV, i)) end
redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[1])
return 1
"""

set_aside = Script(None, SET_ASIDE.encode())  # type: ignore[arg-type]
