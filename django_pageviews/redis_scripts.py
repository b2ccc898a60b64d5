"""Lua scripts: each one a step that must be atomic in Redis.

All keys share one hash tag (``{prefix}``), so that they would stay in one slot of a
Redis Cluster; the client used today is a plain (non-cluster) one.
"""

from __future__ import annotations

from redis.commands.core import AsyncScript, Script

# KEYS: pending, dims, events, sent-marker, oldest, counters, early-lock
# ARGV: marker ttl, now, early threshold, early interval ms, n fields, n dims, n counters,
#       then field/count pairs, dim/count pairs, counter/count pairs, then raw events.
# Idempotent per shipment id (the sent marker): a retried shipment whose first attempt
# did reach Redis is not added twice.
SHIP = """
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[1]) then return {-1, 0} end
local nf, nd, nc = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local i = 8
for _ = 1, nf do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nd do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nc do redis.call('HINCRBY', KEYS[6], ARGV[i], ARGV[i + 1]); i = i + 2 end
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

# KEYS: dims, claims, chunk, event chunk, set-aside chunk, set-aside event chunk, set-aside
# ARGV: batch id, "keep" or "", then dim/count pairs to subtract
# Runs once per batch however often it is called: only the call that removes the claim
# subtracts the batch from the live totals. With "keep" (a batch that cannot be written),
# its keys are moved aside for an operator instead of deleted.
ACK = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
for i = 3, #ARGV, 2 do
  if redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1])) <= 0 then
    redis.call('HDEL', KEYS[1], ARGV[i])
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

# KEYS: pending, claims, claim sequence
# ARGV: chunk key prefix
# Every pending count field, for reads by day (periods, daily series, popular lists).
SNAPSHOT_ALL = """
local claims = redis.call('ZRANGE', KEYS[2], 0, -1)
local chunks = {}
for i, id in ipairs(claims) do chunks[i] = redis.call('HGETALL', ARGV[1] .. id) end
return {redis.call('HGETALL', KEYS[1]), claims, chunks, redis.call('GET', KEYS[3]) or '0'}
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
snapshot_all = Script(None, SNAPSHOT_ALL.encode())  # type: ignore[arg-type]
hold = Script(None, HOLD.encode())  # type: ignore[arg-type]
release = Script(None, RELEASE.encode())  # type: ignore[arg-type]
