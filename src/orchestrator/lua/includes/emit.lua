-- emit(changeKey, eventsKey, auditKey, changeId, now, actor, eventType, extra)
-- Appends one audit event to the global stream and to the change's own timeline, in the same
-- script as the state change it records (DESIGN invariant 5). The event is built here, from the
-- change hash, so that no caller can write an event that disagrees with the stored state.
local function emit(changeKey, eventsKey, auditKey, changeId, now, actor, eventType, extra)
  local fields = rcall('HMGET', changeKey, 'ipsecServerId', 'regionId', 'runs')
  local event = {
    ts = tonumber(now),
    actor = actor,
    type = eventType,
    changeId = changeId,
    ipsecServerId = fields[1],
    regionId = fields[2],
    attempt = tonumber(fields[3] or '0'),
  }
  if extra then
    for k, v in pairs(extra) do
      if v ~= nil and v ~= '' then event[k] = v end
    end
  end
  local body = cjson.encode(event)
  local id = rcall('XADD', auditKey, '*', 'e', body)
  rcall('RPUSH', eventsKey, id .. ' ' .. body)
  return id
end

local function decodeExtra(json)
  if json == nil or json == '' then return nil end
  return cjson.decode(json)
end

local function hsetPairs(key, pairsJson, extraFields)
  local args = {}
  if pairsJson ~= nil and pairsJson ~= '' then
    for k, v in pairs(cjson.decode(pairsJson)) do
      args[#args + 1] = k
      args[#args + 1] = tostring(v)
    end
  end
  for i = 1, #extraFields do args[#args + 1] = extraFields[i] end
  if #args > 0 then rcall('HSET', key, unpack(args)) end
end
