--[[
  Forgets a session only if it is still at the generation the caller saw,
  so a failed recovery never erases a newer pin another replica stored.
  KEYS[1] session hash
  ARGV[1] expected generation
  Returns 1 when removed, 0 otherwise.
]]
if redis.call('HGET', KEYS[1], 'gen') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
