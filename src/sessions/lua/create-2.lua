--[[
  Records a new session at generation 1, only if nothing is recorded under
  its id: a new session never overwrites another's pin (a pod, buggy or
  compromised, that answers initialize with an id already in use).
  KEYS[1] session hash
  ARGV[1] TTL in ms
  ARGV[2] now, epoch ms (created and last-seen)
  ARGV[3] pod "ip:port"
  ARGV[4] backend session id
  ARGV[5] initialize body ("" when not kept)
  ARGV[6] initialize path ("" when not kept)
  Returns 1 when recorded, 0 when the id was taken.
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'pod', ARGV[3], 'bsid', ARGV[4], 'gen', 1, 'init', ARGV[5], 'path', ARGV[6], 'created', ARGV[2], 'seen', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
