-- Compare-and-PEXPIRE: extend a lease only while we still hold it.
-- KEYS[1] = lock key, KEYS[2] = fencing counter (same hash tag).
-- ARGV[1] = owner token, ARGV[2] = new lease ttl (ms), ARGV[3] = fencing counter ttl (ms).
-- Returns 1 if extended, 0 if the lock expired or belongs to another owner.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
-- The counter must outlive every lease that could still be alive.
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
