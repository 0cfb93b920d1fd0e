--[[
  Takes a session's recovery lock for the caller's token. mcp-pin's own
  locks always expire within ARGV[2] ms; a lock held without an expiry, or
  for longer (not one of ours: written by hand, or restored from elsewhere),
  is given that expiry, so it blocks recovery no longer than one of ours.
  KEYS[1] lock key
  ARGV[1] token
  ARGV[2] TTL in ms
  Returns 1 when taken, 0 when held by someone else.
]]
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return 1
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl == -1 or pttl > tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
