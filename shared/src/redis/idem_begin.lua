-- Start an idempotent operation, in one step (modelled on Powertools for AWS Lambda).
-- KEYS[1] = the record, a hash: status (IN_PROGRESS | COMPLETED), payload_hash, token,
--           in_progress_until (server ms), result (JSON, once COMPLETED), completed_at.
-- ARGV[1] = payload hash, ARGV[2] = the caller's new owner token,
-- ARGV[3] = how long the caller may stay IN_PROGRESS (ms), ARGV[4] = record ttl (ms).
-- Returns one of
--   {'PROCEED', '0'}            no record: created IN_PROGRESS, owned by ARGV[2]
--   {'PROCEED', '1'}            took over an IN_PROGRESS record whose owner overran its time
--   {'DONE', result}            COMPLETED with the same payload hash
--   {'IN_PROGRESS', ms_left}    another owner is still within its time
--   {'MISMATCH'}                the record was made for another payload
--   {'CORRUPT', what}           not a record this script wrote
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local took_over = '0'
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'none' then
  if kind ~= 'hash' then
    return {'CORRUPT', 'a ' .. kind .. ' instead of a hash'}
  end
  local rec = redis.call('HMGET', KEYS[1], 'status', 'payload_hash', 'token', 'in_progress_until', 'result')
  local status, payload, token, deadline, result = rec[1], rec[2], rec[3], tonumber(rec[4]), rec[5]
  if status == 'COMPLETED' then
    if payload ~= ARGV[1] then
      return {'MISMATCH'}
    end
    if not result then
      return {'CORRUPT', 'COMPLETED without a result'}
    end
    return {'DONE', result}
  elseif status == 'IN_PROGRESS' then
    if token == ARGV[2] then
      -- Our own call, retried after its reply was lost.
      return {'PROCEED', '0'}
    end
    if not deadline then
      return {'CORRUPT', 'IN_PROGRESS without in_progress_until'}
    end
    if deadline > now then
      if payload ~= ARGV[1] then
        return {'MISMATCH'}
      end
      return {'IN_PROGRESS', string.format('%.0f', deadline - now)}
    end
    -- The owner died or overran its time: take over, whatever payload it had.
    took_over = '1'
  else
    return {'CORRUPT', 'status ' .. tostring(status)}
  end
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'status', 'IN_PROGRESS', 'payload_hash', ARGV[1], 'token', ARGV[2],
  'in_progress_until', string.format('%.0f', now + tonumber(ARGV[3])))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'PROCEED', took_over}
