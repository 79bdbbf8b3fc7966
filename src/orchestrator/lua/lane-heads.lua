--[[
  Lists lane heads that have no BullMQ job: the rare change left unscheduled when a process died
  between its own transition and adding the next job. Run at worker start and now and then; costs
  a few commands per non-empty lane, never per waiting change.

  Input:
    KEYS[1] lanes set
    ARGV[1] lane key prefix (e.g. '{ipf}:lane:')
    ARGV[2] BullMQ job key prefix (e.g. '{ipf}:changes:')
  Output: { changeId, ipsecServerId, changeId, ipsecServerId, ... }
]]
local rcall = redis.call
local orphans = {}
for _, server in ipairs(rcall('SMEMBERS', KEYS[1])) do
  local head = rcall('LINDEX', ARGV[1] .. server, 0)
  if not head then
    rcall('SREM', KEYS[1], server)
  elseif rcall('EXISTS', ARGV[2] .. head) == 0 then
    orphans[#orphans + 1] = head
    orphans[#orphans + 1] = server
  end
end
return orphans
