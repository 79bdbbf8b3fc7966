--[[
  Creates a change in state `queued` at the tail of its server's lane, with its audit event.

  Input:
    KEYS[1] change hash            KEYS[2] change events list
    KEYS[3] lane list              KEYS[4] lanes set (servers whose lane is not empty)
    KEYS[5] changes index (zset)   KEYS[6] server changes index (zset)
    KEYS[7] idempotency key        KEYS[8] audit stream
    ARGV[1] change id              ARGV[2] ipsecServerId
    ARGV[3] now (ms)
    ARGV[4] body hash for the idempotency key ('' when the submission has none)
    ARGV[5] idempotency retention (ms)
    ARGV[6] change fields (JSON object of strings)
    ARGV[7] the `submitted` audit event (JSON)
  Output:
    { 'created', changeId, lanePosition (1 = head) }
    { 'existing', changeId }       the idempotency key was used before with the same body
    { 'mismatch', changeId }       ... with another body
]]
local rcall = redis.call
--- @include "emit"

if ARGV[4] ~= '' then
  local previous = rcall('GET', KEYS[7])
  if previous then
    local separator = string.find(previous, ' ', 1, true)
    local previousId = string.sub(previous, 1, separator - 1)
    if string.sub(previous, separator + 1) == ARGV[4] then return { 'existing', previousId } end
    return { 'mismatch', previousId }
  end
  rcall('SET', KEYS[7], ARGV[1] .. ' ' .. ARGV[4], 'PX', ARGV[5])
end

hsetFields(KEYS[1], ARGV[6], { 'state', 'queued', 'runs', '0', 'createdAt', ARGV[3], 'updatedAt', ARGV[3] })
local position = rcall('RPUSH', KEYS[3], ARGV[1])
if position == 1 then rcall('SADD', KEYS[4], ARGV[2]) end
rcall('ZADD', KEYS[5], ARGV[3], ARGV[1])
rcall('ZADD', KEYS[6], ARGV[3], ARGV[1])
appendEvents(KEYS[2], KEYS[8], 7)
return { 'created', ARGV[1], position }
