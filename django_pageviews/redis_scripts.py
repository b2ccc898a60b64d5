"""Lua scripts: each one a step that must be atomic in Redis.

All keys share one hash tag (``{prefix}``), so that they would stay in one slot of a
Redis Cluster; the client used today is a plain (non-cluster) one.

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

# At most this many values per command built with unpack (even: field/value pairs).
UNPACK_CHUNK = 1000

CHUNKED = f"""
local function chunked(command, key, values, first, last)
  for i = first, last, {UNPACK_CHUNK} do
    redis.call(command, key, unpack(values, i, math.min(i + {UNPACK_CHUNK} - 1, last)))
  end
end
"""

# KEYS: pending, dims, events, sent-marker, oldest, counters, early-lock, epoch
# ARGV: marker ttl, now, early threshold, early interval ms, n fields, n dims, n counters,
#       shipment id, then field/count pairs, dim/count pairs, counter/count pairs, then
#       raw events.
# Idempotent per shipment id (the sent marker): a retried shipment whose first attempt
# did reach Redis is not added twice. The first shipment into an empty Redis names its
# epoch (restore.py: claim sequence numbers are compared within one epoch).
SHIP = (
    CHUNKED
    + """
local nf, nd, nc = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[1]) then return {-1, 0} end
local i = 9
for _ = 1, nf do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nd do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nc do redis.call('HINCRBY', KEYS[6], ARGV[i], ARGV[i + 1]); i = i + 2 end
if i <= #ARGV then chunked('RPUSH', KEYS[3], ARGV, i, #ARGV) end
if nf > 0 then redis.call('SET', KEYS[5], ARGV[2], 'NX') end
redis.call('SET', KEYS[8], ARGV[8], 'NX')
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
# Moves up to n count fields and n raw events into the batch's own keys and records the
# claim with its mark (epoch and claim sequence number, committed with the batch: see
# restore.py); a flusher that dies leaves the claim for cleanup to replay or acknowledge.
# Returns the claim's mark ("epoch:seq"), 0 when there was nothing to claim.
CLAIM = (
    CHUNKED
    + """
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
local events = redis.call('LRANGE', KEYS[2], 0, n - 1)
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

# KEYS: dims, claims, chunk, event chunk, attempts (left by versions before 0.4)
# ARGV: batch id, then dim/count pairs to subtract
# Runs once per batch however often it is called: only the call that removes the claim
# subtracts the batch from the live totals.
ACK = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do
  if redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1])) <= 0 then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('HDEL', KEYS[5], ARGV[1])
return 1
"""

# KEYS: dims, claims, claim sequence
# ARGV: chunk key prefix, then the dimensions asked for
# One consistent picture for a live read: totals, open claims with their counts, and the
# claim sequence number (a reader re-checks it after reading the database).
SNAPSHOT = """
local values = {}
if #ARGV > 1 then values = redis.call('HMGET', KEYS[1], unpack(ARGV, 2)) end
local claims = redis.call('ZRANGE', KEYS[2], 0, -1)
local chunks = {}
for i, id in ipairs(claims) do chunks[i] = redis.call('HGETALL', ARGV[1] .. id) end
return {values, claims, chunks, redis.call('GET', KEYS[3]) or '0'}
"""

# KEYS: pending, claims, claim sequence
# ARGV: chunk key prefix
# Every pending count field, for reads by day (periods, daily series, popular lists).
SNAPSHOT_ALL = """
local claims = redis.call('ZRANGE', KEYS[2], 0, -1)
local chunks = {}
for i, id in ipairs(claims) do chunks[i] = redis.call('HGETALL', ARGV[1] .. id) end
return {redis.call('HGETALL', KEYS[1]), claims, chunks, redis.call('GET', KEYS[3]) or '0'}
"""

# KEYS: claim sequence, epoch, pending, events, dims, claims, oldest, restored groups,
#       group's counts, group's events, group's info
# ARGV: claim sequence and epoch as the caller read them, the database's high-water mark,
#       the claim sequence to continue from, group id, now, n open claims, their ids,
#       then the open claims' dim/count pairs
# A Redis that went back in time (restore.py): what is pending moves aside as one
# "restored" group, the live totals become those of the open claims, and the claim
# sequence continues above the database's. Returns 1 (parked), 0 (nothing pending), or
# -1 when the claim sequence, epoch or open claims changed since the caller read them.
PARK = (
    CHUNKED
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
if #ARGV > 7 + n then chunked('HSET', KEYS[5], ARGV, 8 + n, #ARGV) end
redis.call('SET', KEYS[1], ARGV[4])
if not parked then return 0 end
redis.call('HSET', KEYS[11], 'parked_at', ARGV[6], 'redis_seq', ARGV[1],
           'database_seq', ARGV[3], 'epoch', ARGV[2])
redis.call('ZADD', KEYS[8], ARGV[6], ARGV[5])
return 1
"""
)

# KEYS: restored groups, group's counts, group's events, group's info, claims, chunk,
#       event chunk, dims, claim sequence, claim marks, epoch
# ARGV: group id, batch id, claim time, n count values, n dim values, then the count
#       field/count pairs to replay, their dim/count pairs, and the raw events to replay
# Hands a restored group back to the drain as an ordinary claim (old enough for the next
# cleanup to write it), once however often it is called. Returns 1, 2 when nothing was
# left to replay (the group is removed), 0 when the group was already gone.
REPLAY = (
    CHUNKED
    + """
local nc, nd = tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end  -- the first write
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7])
if nc == 0 and 6 + nc + nd > #ARGV then return 2 end
if nc > 0 then chunked('HSET', KEYS[6], ARGV, 6, 5 + nc) end
for i = 6 + nc, 5 + nc + nd, 2 do redis.call('HINCRBY', KEYS[8], ARGV[i], ARGV[i + 1]) end
if 6 + nc + nd <= #ARGV then chunked('RPUSH', KEYS[7], ARGV, 6 + nc + nd, #ARGV) end
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[2])
local seq = redis.call('INCR', KEYS[9])
redis.call('SET', KEYS[11], ARGV[2], 'NX')
redis.call('HSET', KEYS[10], ARGV[2], redis.call('GET', KEYS[11]) .. ':' .. seq)
return 1
"""
)

ship = Script(None, SHIP.encode())  # type: ignore[arg-type]
aship = AsyncScript(None, SHIP.encode())  # type: ignore[arg-type]
claim = Script(None, CLAIM.encode())  # type: ignore[arg-type]
ack = Script(None, ACK.encode())  # type: ignore[arg-type]
snapshot = Script(None, SNAPSHOT.encode())  # type: ignore[arg-type]
snapshot_all = Script(None, SNAPSHOT_ALL.encode())  # type: ignore[arg-type]
park = Script(None, PARK.encode())  # type: ignore[arg-type]
replay = Script(None, REPLAY.encode())  # type: ignore[arg-type]

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
