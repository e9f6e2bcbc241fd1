-- start_stage: ARGV[3] stage. Running, started now, one more attempt, last outcome cleared.
local s = ARGV[3]
local err = stage_guard(s)
if err then
  return { err, {} }
end
local h = KEYS[1]
local now = now_ms()
redis.call('HSET', h, s .. '.status', 'running', s .. '.started_ms', int(now))
redis.call('HINCRBY', h, s .. '.attempts', 1)
redis.call('HDEL', h, s .. '.finished_ms', s .. '.count', s .. '.error', s .. '.error_type')
return finish(now)
