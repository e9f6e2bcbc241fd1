-- Removes index members whose state hash is gone (expired). Checked here, atomically, so a
-- document re-created between a reader's look and this script is never removed.
-- KEYS[1] doc_index:v2:{dsNN}:{status}, one shard; KEYS[2..n] doc_state hashes of that shard;
-- ARGV[i - 1] is KEYS[i]'s member.
-- Returns how many members were removed.
local removed = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i - 1])
  end
end
return removed
