-- complete_stage: ARGV[3] stage, ARGV[4] count (pages, chunks, mentions... as the stage reports).
local s = ARGV[3]
local err = stage_guard(s)
if err then
  return { err, {} }
end
local h = KEYS[1]
local now = now_ms()
redis.call('HSET', h, s .. '.status', 'completed', s .. '.finished_ms', int(now), s .. '.count', ARGV[4])
redis.call('HDEL', h, s .. '.error', s .. '.error_type')
return finish(now)
