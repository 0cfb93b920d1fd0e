--[[
  Drops a record that cannot be read as a session (a key of another type, or
  a hash whose fields mcp-pin did not write), only if it is still what the
  caller read: a record written meanwhile is kept.
  KEYS[1] session key
  ARGV[1] "type" (the key was not a hash) or "fields"
  ARGV[2..4] with "fields": pod, bsid, gen as read ("" for absent)
  Returns 1 when dropped, 0 otherwise.
]]
local t = redis.call('TYPE', KEYS[1])['ok']
if ARGV[1] == 'type' then
  if t ~= 'none' and t ~= 'hash' then
    return redis.call('DEL', KEYS[1])
  end
  return 0
end
if t ~= 'hash' then
  return 0
end
local v = redis.call('HMGET', KEYS[1], 'pod', 'bsid', 'gen')
if (v[1] or '') == ARGV[2] and (v[2] or '') == ARGV[3] and (v[3] or '') == ARGV[4] then
  return redis.call('DEL', KEYS[1])
end
return 0
