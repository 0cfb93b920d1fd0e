--[[
  Records a new session at generation 1, replacing whatever was there.
  KEYS[1] session hash
  ARGV[1] TTL in ms
  ARGV[2] now, epoch ms (created and last-seen)
  ARGV[3] pod "ip:port"
  ARGV[4] backend session id
  ARGV[5] initialize body ("" when not kept)
  ARGV[6] initialize path ("" when not kept)
  Returns 1.
]]
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'pod', ARGV[3], 'bsid', ARGV[4], 'gen', 1, 'init', ARGV[5], 'path', ARGV[6], 'created', ARGV[2], 'seen', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
