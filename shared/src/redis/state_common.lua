-- Shared prelude of the document-state scripts (state_init/start/complete/fail/skip.lua
-- are each appended to this file to make one script per atomic transition).
--
-- KEYS[1]    doc_state:v2:{dsNN}:{uuid} hash
-- KEYS[2..5] doc_index:v2:{dsNN}:{queued|running|completed|failed} sorted sets of the
--            document's shard (this order): one hash tag, so one cluster slot
-- ARGV[1]    time to live of every key, in milliseconds
-- ARGV[2]    the document uuid (the index member)
-- ARGV[3..]  per operation
--
-- Every script returns {code, fields}: code 'ok' with the hash after the write (HGETALL),
-- or 'missing' / 'unknown_stage' / 'content_mismatch' with an empty list and no write.

local INDEX = { queued = 2, running = 3, completed = 4, failed = 5 }

-- Integers as plain decimal text (a Lua number would be sent as %.17g or exponent form).
local function int(x)
  return string.format('%.0f', x)
end

-- Server time in milliseconds: every writer uses one clock whatever its host's says.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function split(csv)
  local out = {}
  for part in string.gmatch(csv, '[^,]+') do
    out[#out + 1] = part
  end
  return out
end

local function stages()
  return split(redis.call('HGET', KEYS[1], 'stages') or '')
end

-- nil when the document exists and `stage` is one of its stages, else the reply code.
local function stage_guard(stage)
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return 'missing'
  end
  for _, s in ipairs(stages()) do
    if s == stage then
      return nil
    end
  end
  return 'unknown_stage'
end

-- Recomputes the overall fields from the stage statuses, moves the document to the index
-- of its overall status, refreshes every TTL, and returns the reply.
-- Same rules as `derive_overall` in state.rs (the in-process store).
local function finish(now)
  local h = KEYS[1]
  local list = stages()
  local done, started = 0, false
  local running, failed, open = false, false, false
  for _, s in ipairs(list) do
    local st = redis.call('HGET', h, s .. '.status') or 'pending'
    if st == 'completed' or st == 'skipped' then
      done = done + 1
      started = true
    elseif st == 'running' then
      running = running or s
      started = true
    elseif st == 'failed' then
      failed = failed or s
      started = true
    else
      open = open or s
    end
  end
  local status, current
  if failed then
    status, current = 'failed', failed
  elseif done == #list then
    status, current = 'completed', false
  elseif running then
    status, current = 'running', running
  elseif started then
    status, current = 'running', open
  else
    status, current = 'queued', open
  end
  local progress = 0
  if #list > 0 then
    progress = math.floor(done * 100 / #list)
  end
  redis.call('HSET', h, 'status', status, 'progress', int(progress), 'updated_ms', int(now))
  if current then
    redis.call('HSET', h, 'current_stage', current)
  else
    redis.call('HDEL', h, 'current_stage')
  end
  redis.call('PEXPIRE', h, ARGV[1])
  for name, i in pairs(INDEX) do
    if name == status then
      redis.call('ZADD', KEYS[i], int(now), ARGV[2])
      redis.call('PEXPIRE', KEYS[i], ARGV[1])
    else
      redis.call('ZREM', KEYS[i], ARGV[2])
    end
  end
  return { 'ok', redis.call('HGETALL', h) }
end

