-- A provider said "slow down" (HTTP 429): pause every worker's acquires of this API group.
-- Only ever extends a pause, never shortens one another worker set for longer.
--
-- KEYS[1] pause key; ARGV[1] pause in milliseconds (already clamped by the caller).
-- Value: server time (µs) at which the pause ends, for humans reading Redis.
-- Returns the pause now in effect, in milliseconds.

local want = tonumber(ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left >= want then
  return left
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('SET', KEYS[1], string.format('%d', now + want * 1000), 'PX', want)
return want
