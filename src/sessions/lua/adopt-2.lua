--[[
  Adopts a session that the store had lost (Redis flushed or restarted
  without persistence) and a pod has just proven it holds: records the pod
  only if nothing is recorded under that id, so a real record made
  meanwhile is never overwritten. No initialize body is known; the path the
  session was found on is its MCP path (where recovery asks the pod).
  KEYS[1] session hash
  ARGV[1] TTL in ms
  ARGV[2] now, epoch ms
  ARGV[3] pod "ip:port"
  ARGV[4] backend session id
  ARGV[5] the MCP path the session was found on ("" when not kept)
  Returns 1 when adopted, 0 when a record already existed.
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'pod', ARGV[3], 'bsid', ARGV[4], 'gen', 1, 'init', '', 'path', ARGV[5], 'created', ARGV[2], 'seen', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
