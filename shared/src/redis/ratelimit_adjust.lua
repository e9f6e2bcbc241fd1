-- Corrects the cost of one grant once the real usage is known (LLM tokens: the estimate
-- reserved before the call, the provider's count after it). The entry keeps its grant
-- time, so it leaves the window when the original would have.
--
-- KEYS[1] log (zset), KEYS[2] its counter
-- ARGV[1] old member, ARGV[2] new member, ARGV[3] grant time (µs), ARGV[4] new cost,
-- ARGV[5] window (µs)
--
-- Idempotent (a retry after a lost reply changes nothing more). Returns the change of the
-- window's sum, or 0 when the grant has already left the window.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[5])
local at = tonumber(ARGV[3])
if at <= now - window then
  return 0
end

local function cost_of(member)
  return tonumber(string.match(member, ':(%d+)$')) or 1
end

local delta = 0
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  delta = delta - cost_of(ARGV[1])
end
local cost = tonumber(ARGV[4])
if cost > 0 and redis.call('ZADD', KEYS[1], at, ARGV[2]) == 1 then
  delta = delta + cost
end

local ttl_ms = math.ceil(window / 1000) + 1000
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return delta
end
if delta ~= 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('INCRBY', KEYS[2], delta)
  else
    local used = 0
    for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
      used = used + cost_of(m)
    end
    redis.call('SET', KEYS[2], used)
  end
end
redis.call('PEXPIRE', KEYS[1], ttl_ms)
redis.call('PEXPIRE', KEYS[2], ttl_ms)
return delta
