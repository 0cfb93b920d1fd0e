--[[
  Moves a session to a new pod and backend session id, if nobody else did
  since the caller read it (compare-and-set on the generation).
  KEYS[1] session hash
  ARGV[1] TTL in ms
  ARGV[2] now, epoch ms
  ARGV[3] expected generation
  ARGV[4] new pod "ip:port"
  ARGV[5] new backend session id
  Returns the new generation; -1 when the session is gone; -2 when the
  generation moved on (another recovery won).
]]
local gen = redis.call('HGET', KEYS[1], 'gen')
if not gen then
  return -1
end
if gen ~= ARGV[3] then
  return -2
end
local next = tonumber(gen) + 1
redis.call('HSET', KEYS[1], 'pod', ARGV[4], 'bsid', ARGV[5], 'gen', next, 'seen', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return next
