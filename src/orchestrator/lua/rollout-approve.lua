--[[
  Records one approval of a rollout awaiting approval. The approver must not be its submitter and
  counts once; when the distinct approvals reach the required number the rollout is `approved`.
  An approval arriving after the window closed expires the rollout instead.

  Input:
    KEYS[1] rollout hash        KEYS[2] approvals set      KEYS[3] audit stream
    ARGV[1] approver            ARGV[2] now (ms)
    ARGV[3] the `rollout_expired` audit event (JSON)
    ARGV[4] the `rollout_approval` audit event (JSON)
    ARGV[5] the `rollout_approved` audit event (JSON), used when this approval is the last needed
  Output:
    { 'approved', count } | { 'recorded', count }
    { 'missing' } | { 'wrong_state', state } | { 'expired' } | { 'self' } | { 'duplicate', count }
]]
local rcall = redis.call

local function append(body, into)
  local id = rcall('XADD', KEYS[3], '*', 'e', body)
  into[#into + 1] = 'e:' .. id
  into[#into + 1] = body
  return into
end

local state = rcall('HGET', KEYS[1], 'state')
if not state then return { 'missing' } end
if state ~= 'awaiting_approval' then return { 'wrong_state', state } end

local expiresAt = tonumber(rcall('HGET', KEYS[1], 'expiresAt') or '0')
if expiresAt > 0 and tonumber(ARGV[2]) >= expiresAt then
  rcall('HSET', KEYS[1], unpack(append(ARGV[3], { 'state', 'expired', 'updatedAt', ARGV[2], 'finishedAt', ARGV[2] })))
  return { 'expired' }
end
if rcall('HGET', KEYS[1], 'actor') == ARGV[1] then return { 'self' } end
if rcall('SADD', KEYS[2], ARGV[1]) == 0 then return { 'duplicate', rcall('SCARD', KEYS[2]) } end

local count = rcall('SCARD', KEYS[2])
local required = tonumber(rcall('HGET', KEYS[1], 'approvalsRequired') or '1')
local fields = append(ARGV[4], { 'approvals', tostring(count), 'updatedAt', ARGV[2] })
if count >= required then
  fields[#fields + 1] = 'state'
  fields[#fields + 1] = 'approved'
  rcall('HSET', KEYS[1], unpack(append(ARGV[5], fields)))
  return { 'approved', count }
end
rcall('HSET', KEYS[1], unpack(fields))
return { 'recorded', count }
