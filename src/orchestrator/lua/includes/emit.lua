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

-- The fields of a JSON object of strings, as name/value pairs for hsetFields. Decoded before the
-- script's first write: a script that fails part way keeps what it wrote before (Redis has no
-- rollback), and cjson refuses some texts JSON.stringify writes (a lone UTF-16 surrogate), so a
-- decode after the XADD would leave an event whose transition never happened.
local function fieldPairs(fieldsJson)
  local decoded = {}
  if fieldsJson ~= nil and fieldsJson ~= '' then
    for k, v in pairs(cjson.decode(fieldsJson)) do
      decoded[#decoded + 1] = k
      decoded[#decoded + 1] = tostring(v)
    end
  end
  return decoded
end

-- Sets literal name/value pairs, then the decoded fields (fieldPairs), in one HSET.
local function hsetFields(key, decoded, pairs_)
  for i = 1, #decoded do pairs_[#pairs_ + 1] = decoded[i] end
  if #pairs_ > 0 then rcall('HSET', key, unpack(pairs_)) end
end
