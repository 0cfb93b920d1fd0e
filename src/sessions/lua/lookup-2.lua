--[[
  Reads a session's pin and slides its TTL, in one round trip. The slide (a
  write) happens only once the last one is at least ARGV[3] ms old, so a busy
  session costs Redis a read per request, not a read and two writes.
  KEYS[1] session hash
  ARGV[1] TTL in ms
  ARGV[2] now, epoch ms (recorded as last-seen)
  ARGV[3] slide step in ms (0: every lookup)
  Returns {pod, backendSessionId, generation}; nil when unknown; three nils
  for a hash without a pod (not one mcp-pin wrote: the caller refuses it).
]]
local v = redis.call('HMGET', KEYS[1], 'pod', 'bsid', 'gen', 'seen')
if not v[1] then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return nil
  end
  return {false, v[2], v[3]}
end
if tonumber(ARGV[2]) - (tonumber(v[4]) or 0) >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'seen', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {v[1], v[2], v[3]}
