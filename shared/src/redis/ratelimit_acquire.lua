-- Sliding-window log: take `cost` from one or more limits of one API group, atomically.
-- Time is the server's (TIME), never a client's, so workers with skewed clocks agree.
--
-- KEYS[1]           pause key of the group (set by ratelimit_throttle.lua after a 429)
-- KEYS[2i], KEYS[2i+1]  for each limit i: the log (zset, score = grant time in µs, member
--                   "{now_us}-{token}:{cost}") and its counter (sum of the costs in the log)
-- ARGV[1]           random token (hex) that makes this grant's members unique
-- ARGV[3i-1..3i+1]  for each limit i: window (µs), limit, cost
--
-- Returns {granted (1/0), wait_us, now_us, reason}: reason 0 = granted or paused (wait is
-- the pause's remaining time), i = limit i is full (wait is until enough of its oldest
-- entries leave the window for `cost` to fit).

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local paused = redis.call('PTTL', KEYS[1])
if paused == -1 then
  -- A pause without a TTL would stop the API for ever; bound it.
  redis.call('PEXPIRE', KEYS[1], 1000)
  paused = 1000
end
if paused > 0 then
  return {0, paused * 1000, now, 0}
end

local function cost_of(member)
  return tonumber(string.match(member, ':(%d+)$')) or 1
end

-- Drops entries that left the window and returns the cost still in it. The counter holds
-- the sum of every entry of the log; if it is missing or inconsistent it is rebuilt.
local function live_cost(log, counter, cutoff, ttl_ms)
  local old = redis.call('ZRANGEBYSCORE', log, '-inf', cutoff)
  if #old > 0 then
    redis.call('ZREMRANGEBYSCORE', log, '-inf', cutoff)
  end
  local stored = redis.call('GET', counter)
  if stored then
    local gone = 0
    for _, m in ipairs(old) do
      gone = gone + cost_of(m)
    end
    local used = tonumber(stored) - gone
    if used > 0 then
      if gone > 0 then
        redis.call('DECRBY', counter, gone)
      end
      return used
    end
  end
  local used = 0
  for _, m in ipairs(redis.call('ZRANGE', log, 0, -1)) do
    used = used + cost_of(m)
  end
  if used > 0 then
    redis.call('SET', counter, used, 'PX', ttl_ms)
  else
    redis.call('DEL', counter)
  end
  return used
end

-- Time until `need` units of the oldest entries have left the window.
local function time_to_free(log, need, window)
  local freed, at, start = 0, now, 0
  while freed < need do
    local batch = redis.call('ZRANGE', log, start, start + 31, 'WITHSCORES')
    if #batch == 0 then
      break
    end
    for j = 1, #batch, 2 do
      freed = freed + cost_of(batch[j])
      at = tonumber(batch[j + 1])
      if freed >= need then
        break
      end
    end
    start = start + 32
  end
  local wait = at + window - now
  if wait < 1 then
    wait = 1
  end
  return wait
end

local n = (#KEYS - 1) / 2
local wait, reason = 0, 0
for i = 1, n do
  local log, counter = KEYS[2 * i], KEYS[2 * i + 1]
  local window = tonumber(ARGV[3 * i - 1])
  local limit = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local ttl_ms = math.ceil(window / 1000) + 1000
  local used = live_cost(log, counter, now - window, ttl_ms)
  if used + cost > limit then
    local w = time_to_free(log, used + cost - limit, window)
    if w > wait then
      wait, reason = w, i
    end
  end
end
if wait > 0 then
  return {0, wait, now, reason}
end

local token = ARGV[1]
for i = 1, n do
  local log, counter = KEYS[2 * i], KEYS[2 * i + 1]
  local window = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i + 1])
  local ttl_ms = math.ceil(window / 1000) + 1000
  if cost > 0 then
    redis.call('ZADD', log, now, string.format('%d-%s:%d', now, token, cost))
    redis.call('INCRBY', counter, cost)
  end
  if redis.call('EXISTS', log) == 1 then
    redis.call('PEXPIRE', log, ttl_ms)
    redis.call('PEXPIRE', counter, ttl_ms)
  end
end
return {1, 0, now, 0}
