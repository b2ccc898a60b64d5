"""Lua scripts: each one a step that must be atomic in Redis.

All keys share one hash tag (``{prefix}``), so that they would stay in one slot of a
Redis Cluster; the client used today is a plain (non-cluster) one.
"""

from __future__ import annotations

from redis.commands.core import AsyncScript, Script

# KEYS: pending, dims, events, sent-marker, oldest, counters, early-lock, list registry
# ARGV: marker ttl, now, early threshold, early interval ms, n fields, n dims, n counters,
#       n list entries, then field/count pairs, dim/count pairs, counter/count pairs,
#       list/member/count triples (toplists.py), then raw events.
# Idempotent per shipment id (the sent marker): a retried shipment whose first attempt
# did reach Redis is not added twice.
SHIP = """
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[1]) then return {-1, 0} end
local nf, nd, nc = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local nl = tonumber(ARGV[8])
local i = 9
for _ = 1, nf do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nd do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nc do redis.call('HINCRBY', KEYS[6], ARGV[i], ARGV[i + 1]); i = i + 2 end
local listed = {}
for _ = 1, nl do
  redis.call('ZINCRBY', KEYS[8] .. ':' .. ARGV[i], -tonumber(ARGV[i + 2]), ARGV[i + 1])
  listed[ARGV[i]] = (listed[ARGV[i]] or 0) + tonumber(ARGV[i + 2]); i = i + 3
end
for name, n in pairs(listed) do redis.call('ZINCRBY', KEYS[8], n, name) end
if i <= #ARGV then redis.call('RPUSH', KEYS[3], unpack(ARGV, i)) end
if nf > 0 then redis.call('SET', KEYS[5], ARGV[2], 'NX') end
local total = tonumber(redis.call('HGET', KEYS[2], 't') or '0')
local threshold = tonumber(ARGV[3])
local early = 0
if threshold > 0 and total >= threshold then
  if redis.call('SET', KEYS[7], '1', 'NX', 'PX', ARGV[4]) then early = 1 end
end
return {total, early}
"""

# KEYS: pending, events, claims, chunk, event chunk, claim sequence, oldest
# ARGV: n, now, batch id
# Moves up to n count fields and n raw events into the batch's own keys and records the
# claim; a flusher that dies leaves the claim for cleanup to replay or acknowledge.
# Returns -1, claiming nothing, while a live read holds new claims off (HOLD).
CLAIM = """
if redis.call('EXISTS', KEYS[6] .. ':hold') == 1 then return -1 end
local n = tonumber(ARGV[1])
local fields, cursor = {}, '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', n)
  cursor = page[1]
  for _, x in ipairs(page[2]) do fields[#fields + 1] = x end
until cursor == '0' or #fields >= 2 * n
local moved = {}
for j = 1, math.min(#fields, 2 * n), 2 do
  if moved[fields[j]] == nil then
    moved[fields[j]] = fields[j + 1]
    redis.call('HSET', KEYS[4], fields[j], fields[j + 1])
    redis.call('HDEL', KEYS[1], fields[j])
  end
end
local events = redis.call('LRANGE', KEYS[2], 0, n - 1)
if #events > 0 then
  redis.call('RPUSH', KEYS[5], unpack(events))
  redis.call('LTRIM', KEYS[2], #events, -1)
end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[7]) end
if next(moved) == nil and #events == 0 then return 0 end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
redis.call('INCR', KEYS[6])
return 1
"""

# KEYS: dims, claims, chunk, event chunk, set-aside chunk, set-aside event chunk, set-aside,
#       list registry
# ARGV: batch id, "keep" or "", n dims, then dim/count pairs to subtract, then
#       list/member/count triples to subtract (toplists.py)
# Runs once per batch however often it is called: only the call that removes the claim
# subtracts the batch from the live totals. With "keep" (a batch that cannot be written),
# its keys are moved aside for an operator instead of deleted.
ACK = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
local lists = 4 + 2 * tonumber(ARGV[3])
for i = 4, lists - 1, 2 do
  if redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1])) <= 0 then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
local listed = {}
for i = lists, #ARGV, 3 do
  local list = KEYS[8] .. ':' .. ARGV[i]
  if tonumber(redis.call('ZINCRBY', list, ARGV[i + 2], ARGV[i + 1])) >= 0 then
    redis.call('ZREM', list, ARGV[i + 1])
  end
  listed[ARGV[i]] = (listed[ARGV[i]] or 0) + tonumber(ARGV[i + 2])
end
for name, n in pairs(listed) do
  if tonumber(redis.call('ZINCRBY', KEYS[8], -n, name)) <= 0 then
    redis.call('ZREM', KEYS[8], name)
  end
end
if ARGV[2] == 'keep' then
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('RENAME', KEYS[3], KEYS[5]) end
  if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('RENAME', KEYS[4], KEYS[6]) end
  redis.call('ZADD', KEYS[7], redis.call('TIME')[1], ARGV[1])
else
  redis.call('DEL', KEYS[3], KEYS[4])
end
return 1
"""

# KEYS: dims, claims, claim sequence
# ARGV: chunk key prefix, then the dimensions asked for
# One consistent picture for a live read: totals, open claims with their counts, and the
# claim sequence number (a reader re-checks it after reading the database). HMGET takes
# the dimensions 1,000 at a time: unpack() fails past a few thousand values.
SNAPSHOT = """
local values = {}
for first = 2, #ARGV, 1000 do
  local part = redis.call('HMGET', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV)))
  for _, v in ipairs(part) do values[#values + 1] = v end
end
local claims = redis.call('ZRANGE', KEYS[2], 0, -1)
local chunks = {}
for i, id in ipairs(claims) do chunks[i] = redis.call('HGETALL', ARGV[1] .. id) end
return {values, claims, chunks, redis.call('GET', KEYS[3]) or '0'}
"""

# KEYS: list registry, claims, claim sequence
# ARGV: chunk key prefix, list name prefix, first day, last day ('' for an open end), k,
#       then kind/member pairs
# For reads by day (toplists.py): of every list whose name starts with the prefix and whose
# day is in range, its name, its first k entries, and the scores of the members asked for
# and of every member of those tops, in every list of the same kind (nil when absent);
# then the open claims with their counts and the claim sequence number, as SNAPSHOT.
SNAPSHOT_LISTS = """
local k = tonumber(ARGV[5])
local names, tops = {}, {}
for _, name in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local day = string.sub(name, -10)
  if string.sub(name, 1, #ARGV[2]) == ARGV[2] and (ARGV[3] == '' or day >= ARGV[3])
      and (ARGV[4] == '' or day <= ARGV[4]) then
    names[#names + 1] = name
    local top = {}
    if k > 0 then top = redis.call('ZRANGE', KEYS[1] .. ':' .. name, 0, k - 1, 'WITHSCORES') end
    tops[#tops + 1] = top
  end
end
local asked, seen = {}, {}
local function ask(kind, member)
  local key = kind .. '\0' .. member
  if seen[key] then return end
  seen[key] = true
  asked[kind] = asked[kind] or {}
  table.insert(asked[kind], member)
end
for i = 6, #ARGV, 2 do ask(ARGV[i], ARGV[i + 1]) end
for j, name in ipairs(names) do
  local kind = string.sub(name, 1, -12)
  for m = 1, #tops[j], 2 do ask(kind, tops[j][m]) end
end
local members, scores = {}, {}
for j, name in ipairs(names) do
  local wanted = asked[string.sub(name, 1, -12)] or {}
  local got = {}
  for first = 1, #wanted, 1000 do
    local last = math.min(first + 999, #wanted)
    local part = redis.call('ZMSCORE', KEYS[1] .. ':' .. name, unpack(wanted, first, last))
    for m = 1, #part do got[#got + 1] = part[m] end
  end
  members[j], scores[j] = wanted, got
end
local claims = redis.call('ZRANGE', KEYS[2], 0, -1)
local chunks = {}
for i, id in ipairs(claims) do chunks[i] = redis.call('HGETALL', ARGV[1] .. id) end
return {names, tops, members, scores, claims, chunks, redis.call('GET', KEYS[3]) or '0'}
"""

# KEYS: hold   ARGV: expiry in ms
# A live read holds new claims off while it makes its database snapshot agree with Redis;
# holds of several readers add up, and a reader that dies lets its hold expire.
HOLD = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n
"""

# KEYS: hold
RELEASE = """
if redis.call('DECR', KEYS[1]) <= 0 then redis.call('DEL', KEYS[1]) end
return 1
"""

ship = Script(None, SHIP.encode())  # type: ignore[arg-type]
aship = AsyncScript(None, SHIP.encode())  # type: ignore[arg-type]
claim = Script(None, CLAIM.encode())  # type: ignore[arg-type]
ack = Script(None, ACK.encode())  # type: ignore[arg-type]
snapshot = Script(None, SNAPSHOT.encode())  # type: ignore[arg-type]
snapshot_lists = Script(None, SNAPSHOT_LISTS.encode())  # type: ignore[arg-type]
hold = Script(None, HOLD.encode())  # type: ignore[arg-type]
release = Script(None, RELEASE.encode())  # type: ignore[arg-type]
