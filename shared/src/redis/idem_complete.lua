-- Record the result of an idempotent operation, only if the caller still owns the record.
-- KEYS[1] = the record; ARGV[1] = owner token, ARGV[2] = result (JSON),
-- ARGV[3] = record ttl (ms).
-- Returns 1 if stored (or already stored by this owner), 0 if another owner took the
-- record over, or it is gone.
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then
  return 0
end
local rec = redis.call('HMGET', KEYS[1], 'status', 'token')
if rec[2] ~= ARGV[1] then
  return 0
end
if rec[1] == 'COMPLETED' then
  -- Our own call, retried after its reply was lost.
  return 1
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'status', 'COMPLETED', 'result', ARGV[2], 'completed_at', t[1])
redis.call('HDEL', KEYS[1], 'in_progress_until')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
