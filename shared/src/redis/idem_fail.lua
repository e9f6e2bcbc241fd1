-- Give up an idempotent operation so that a retry can run: delete the record, only if the
-- caller still owns it and it is IN_PROGRESS (a COMPLETED result is never deleted).
-- KEYS[1] = the record; ARGV[1] = owner token. Returns 1 if deleted, 0 otherwise.
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then
  return 0
end
local rec = redis.call('HMGET', KEYS[1], 'status', 'token')
if rec[1] ~= 'IN_PROGRESS' or rec[2] ~= ARGV[1] then
  return 0
end
return redis.call('DEL', KEYS[1])
