-- Compare-and-delete: release a single-flight lease only if we still hold it.
-- KEYS[1] = lease key, ARGV[1] = our token. Returns 1 if released, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
