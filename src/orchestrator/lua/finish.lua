--[[
  Ends a change (succeeded, rejected, failed, cancelled, expired): leaves its lane, gives back its
  lease, and reports the new lane head so the caller can make it runnable. When the change was
  its account's circuit probe, the circuit closes and the changes that waited on it are handed
  back: whatever the probe's outcome, the next one to meet the lock becomes the new probe.

  Input:
    KEYS[1] change hash   KEYS[2] change events list   KEYS[3] lane list   KEYS[4] lanes set
    KEYS[5] lock (lease)  KEYS[6] audit stream         KEYS[7] account circuit
    KEYS[8] circuit waiters set
    ARGV[1] change id     ARGV[2] owner token ('' when the change is not running: cancel, expiry)
    ARGV[3] now (ms)      ARGV[4] terminal state       ARGV[5] ipsecServerId
    ARGV[6] fields to set (JSON object)
    ARGV[7] states it may leave, comma-separated (e.g. 'running' or 'queued,backing_off')
    ARGV[8] '1' when the change may be its account's circuit probe (it met a financial lock)
    ARGV[9..] audit events (JSON): steps not yet recorded, then the terminal one
  Output:
    { 'done', nextHeadId or '', waiterId... }
    { 'lost_lease' } | { 'missing' } | { 'wrong_state', state }
]]
local rcall = redis.call
--- @include "emit"

local state = rcall('HGET', KEYS[1], 'state')
if not state then return { 'missing' } end
if not string.find(',' .. ARGV[7] .. ',', ',' .. state .. ',', 1, true) then return { 'wrong_state', state } end
if ARGV[2] ~= '' then
  if rcall('GET', KEYS[5]) ~= ARGV[2] then return { 'lost_lease' } end
  rcall('DEL', KEYS[5])
end

hsetFields(KEYS[1], ARGV[6], { 'state', ARGV[4], 'step', 'done', 'finishedAt', ARGV[3], 'updatedAt', ARGV[3], 'owner', '', 'nextAt', '' })
-- A running change is its lane's head; a cancelled one may be anywhere in the lane.
if state == 'running' then
  rcall('LPOP', KEYS[3])
else
  rcall('LREM', KEYS[3], 1, ARGV[1])
end
local nextHead = rcall('LINDEX', KEYS[3], 0)
if not nextHead then rcall('SREM', KEYS[4], ARGV[5]) end
appendEvents(KEYS[2], KEYS[6], 9)

local result = { 'done', nextHead or '' }
if ARGV[8] == '1' and rcall('HGET', KEYS[7], 'probe') == ARGV[1] then
  rcall('DEL', KEYS[7])
  for _, waiter in ipairs(rcall('SMEMBERS', KEYS[8])) do result[#result + 1] = waiter end
  rcall('DEL', KEYS[8])
end
return result
