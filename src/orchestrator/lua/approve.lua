--[[
  Records one approval of a change awaiting approval. The approver must not be its submitter and
  counts once. When the distinct approvals reach the number the change requires, it is `queued`
  at the tail of its server's lane, with its `approved` event, in this same script; the caller
  makes it runnable when it is the lane's head. An approval after the deadline expires the change
  instead (the expiry job may not have run yet).

  Input:
    KEYS[1] change hash     KEYS[2] lane list     KEYS[3] audit stream
    ARGV[1] change id       ARGV[2] approver        ARGV[3] now (ms)
    ARGV[4] the `expired` audit event (JSON)
    ARGV[5] the `approval` audit event (JSON): one approval, more needed
    ARGV[6] the `approved` audit event (JSON): this approval is the last needed (the
            approvers are added to its details here)
  Output:
    { 'approved', lanePosition (1 = head) } | { 'recorded', count, required }
    { 'duplicate', count, required }   this approver had approved already: it counts once
    { 'missing' } | { 'wrong_state', state } | { 'expired' } | { 'self' }
]]
local rcall = redis.call

local function append(body, into)
  local id = rcall('XADD', KEYS[3], '*', 'e', body)
  into[#into + 1] = 'e:' .. id
  into[#into + 1] = body
  return into
end

local change = rcall('HMGET', KEYS[1], 'state', 'actor', 'expiresAt', 'approvalsRequired', 'approvers')
local state = change[1]
if not state then return { 'missing' } end
if state ~= 'awaiting_approval' then return { 'wrong_state', state } end

if tonumber(ARGV[3]) >= tonumber(change[3] or '0') then
  rcall('HSET', KEYS[1], unpack(append(ARGV[4], {
    'state', 'expired', 'step', 'done', 'updatedAt', ARGV[3], 'finishedAt', ARGV[3] })))
  return { 'expired' }
end
if change[2] == ARGV[2] then return { 'self' } end

local required = tonumber(change[4] or '1')
local approvers = change[5] and cjson.decode(change[5]) or {}
for _, approver in ipairs(approvers) do
  if approver == ARGV[2] then return { 'duplicate', #approvers, required } end
end
approvers[#approvers + 1] = ARGV[2]

local fields = { 'approvers', cjson.encode(approvers), 'updatedAt', ARGV[3] }
if #approvers < required then
  rcall('HSET', KEYS[1], unpack(append(ARGV[5], fields)))
  return { 'recorded', #approvers, required }
end
fields[#fields + 1] = 'state'
fields[#fields + 1] = 'queued'
local event = cjson.decode(ARGV[6])
if type(event.details) ~= 'table' then event.details = {} end
event.details.approvers = approvers
rcall('HSET', KEYS[1], unpack(append(cjson.encode(event), fields)))
return { 'approved', rcall('RPUSH', KEYS[2], ARGV[1]) }
