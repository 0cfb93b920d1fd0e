--[[
  Applies one change to a session's state (subscriptions, log level), the
  rule session-state.ts applyChange writes down: a subscribe already there
  or an unsubscribe of none changes nothing, the last level wins, and a
  subscribe past the bounds is not kept. The state is JSON {"l": level or
  null, "s": [uri, ...]}; a state that cannot be read counts as none. The
  record's TTL is kept; a record that is gone is not made again.
  KEYS[1] session hash
  ARGV[1] 'subscribe' | 'unsubscribe' | 'setLevel'
  ARGV[2] the URI, or the level
  ARGV[3] most subscriptions kept
  ARGV[4] most bytes of subscribed URIs kept, all together
  Returns 'kept', 'unchanged', 'over_limit', or 'gone' when the session is gone.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'gone'
end
local level = false
local subs = {}
local raw = redis.call('HGET', KEYS[1], 'state')
if raw then
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then
    if type(v.l) == 'string' then
      level = v.l
    end
    if type(v.s) == 'table' then
      for _, u in ipairs(v.s) do
        if type(u) == 'string' and u ~= '' then
          subs[#subs + 1] = u
        end
      end
    end
  end
end
local op, value = ARGV[1], ARGV[2]
local function find(uri)
  for i, u in ipairs(subs) do
    if u == uri then
      return i
    end
  end
  return nil
end
if op == 'setLevel' then
  if level == value then
    return 'unchanged'
  end
  level = value
elseif op == 'unsubscribe' then
  local i = find(value)
  if not i then
    return 'unchanged'
  end
  table.remove(subs, i)
else
  if find(value) then
    return 'unchanged'
  end
  local bytes = #value
  for _, u in ipairs(subs) do
    bytes = bytes + #u
  end
  if #subs + 1 > tonumber(ARGV[3]) or bytes > tonumber(ARGV[4]) then
    return 'over_limit'
  end
  subs[#subs + 1] = value
end
if not level and #subs == 0 then
  redis.call('HDEL', KEYS[1], 'state')
else
  -- An empty Lua table encodes as {}: read back as no subscriptions.
  redis.call('HSET', KEYS[1], 'state', cjson.encode({ l = level or cjson.null, s = subs }))
end
return 'kept'
