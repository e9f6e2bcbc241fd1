-- skip_stage: ARGV[3] stage. Skipped counts as done for progress and completion.
local s = ARGV[3]
local err = stage_guard(s)
if err then
  return { err, {} }
end
local h = KEYS[1]
local now = now_ms()
redis.call('HSET', h, s .. '.status', 'skipped', s .. '.finished_ms', int(now))
redis.call('HDEL', h, s .. '.count', s .. '.error', s .. '.error_type')
return finish(now)
