-- appendEvents(auditKey, first): ARGV[first..#ARGV] are audit events, JSON objects the caller
-- built from the change it holds. Each is appended to the global stream and returned as an
-- `e:<stream id>`/body pair for the change hash, so the change's own timeline is written by the
-- HSET that records its new state: one command, in the same script (DESIGN invariant 5).
local function appendEvents(auditKey, first, into)
  for i = first, #ARGV do
    local id = rcall('XADD', auditKey, '*', 'e', ARGV[i])
    into[#into + 1] = 'e:' .. id
    into[#into + 1] = ARGV[i]
  end
  return into
end

-- Sets the fields of a JSON object of strings plus literal name/value pairs, in one HSET.
local function hsetFields(key, fieldsJson, pairs_)
  if fieldsJson ~= nil and fieldsJson ~= '' then
    for k, v in pairs(cjson.decode(fieldsJson)) do
      pairs_[#pairs_ + 1] = k
      pairs_[#pairs_ + 1] = tostring(v)
    end
  end
  if #pairs_ > 0 then rcall('HSET', key, unpack(pairs_)) end
end
