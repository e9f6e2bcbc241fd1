-- Take a lock and issue its fencing token, in one step.
-- KEYS[1] = lock key, KEYS[2] = fencing counter (both carry the same hash tag).
-- ARGV[1] = owner token (random, 128 bits), ARGV[2] = lease ttl (ms),
-- ARGV[3] = fencing counter ttl (ms).
-- Returns the new fencing token (> 0) when the lock was free, 0 when another owner holds it.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  -- Our own call, retried after its reply was lost: nobody can have taken a token since.
  return tonumber(redis.call('GET', KEYS[2]) or '-1')
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- First lock of this resource, or the counter was lost (expiry, eviction, a restart
  -- without persistence): start from the server clock in microseconds, which is above
  -- every token issued before, so tokens never go backwards.
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2])))
end
local fence = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return fence
