-- fail_stage: ARGV[3] stage, ARGV[4] error_type, ARGV[5] message. The document is failed.
local s = ARGV[3]
local err = stage_guard(s)
if err then
  return { err, {} }
end
local h = KEYS[1]
local now = now_ms()
redis.call('HSET', h, s .. '.status', 'failed', s .. '.finished_ms', int(now),
  s .. '.error_type', ARGV[4], s .. '.error', ARGV[5])
redis.call('HDEL', h, s .. '.count')
return finish(now)
