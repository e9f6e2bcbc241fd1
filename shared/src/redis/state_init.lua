-- init: ARGV[3] source, ARGV[4] content_sha256, ARGV[5] stages (comma-separated, in order).
-- Creates the document, or updates its source and stage list keeping every stage result.
local h = KEYS[1]
local now = now_ms()
local known = redis.call('HGET', h, 'content_sha256')
if known and known ~= ARGV[4] then
  return { 'content_mismatch', {} }
end
if not known then
  redis.call('HSET', h, 'created_ms', int(now), 'content_sha256', ARGV[4])
end
redis.call('HSET', h, 'source', ARGV[3], 'stages', ARGV[5])
for _, s in ipairs(split(ARGV[5])) do
  redis.call('HSETNX', h, s .. '.status', 'pending')
  redis.call('HSETNX', h, s .. '.attempts', '0')
end
return finish(now)
