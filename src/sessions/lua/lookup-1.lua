--[[
  Reads a session's pin and slides its TTL, in one round trip.
  KEYS[1] session hash
  ARGV[1] TTL in ms
  ARGV[2] now, epoch ms (recorded as last-seen)
  Returns {pod, backendSessionId, generation}, or nil when unknown.
]]
local v = redis.call('HMGET', KEYS[1], 'pod', 'bsid', 'gen')
if not v[1] then
  return nil
end
redis.call('HSET', KEYS[1], 'seen', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return v
