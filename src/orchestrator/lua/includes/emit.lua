-- appendEvents(eventsKey, auditKey, first): ARGV[first..#ARGV] are audit events, JSON objects the
-- caller built from the change it holds, appended in order to the global stream and to the
-- change's own timeline in the same script as the state change they record (DESIGN invariant 5).
-- Each timeline entry is "<stream id> <json>", so a change's history is one LRANGE.
local function appendEvent(eventsKey, auditKey, body)
  local id = rcall('XADD', auditKey, '*', 'e', body)
  rcall('RPUSH', eventsKey, id .. ' ' .. body)
end

local function appendEvents(eventsKey, auditKey, first)
  for i = first, #ARGV do appendEvent(eventsKey, auditKey, ARGV[i]) end
end

-- Sets the fields of a JSON object of strings, plus literal name/value pairs, in one HSET.
local function hsetFields(key, fieldsJson, extraFields)
  local args = {}
  if fieldsJson ~= nil and fieldsJson ~= '' then
    for k, v in pairs(cjson.decode(fieldsJson)) do
      args[#args + 1] = k
      args[#args + 1] = tostring(v)
    end
  end
  for i = 1, #extraFields do args[#args + 1] = extraFields[i] end
  if #args > 0 then rcall('HSET', key, unpack(args)) end
end
