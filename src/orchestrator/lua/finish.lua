--[[
  Ends a change (succeeded, rejected, failed, cancelled, expired): leaves its lane, gives back its
  lease, and reports the new lane head so the caller can make it runnable. When the change was
  its account's circuit probe, the circuit closes and the changes that waited on it are handed
  back: whatever the probe's outcome (cancelled included), the next one to meet the lock becomes
  the new probe.

  Input:
    KEYS[1] change hash   KEYS[2] lane list          KEYS[3] lock (lease)   KEYS[4] audit stream
    KEYS[5] account circuit                          KEYS[6] circuit waiters set
    KEYS[7] the circuit's last release (hash: probe, waiters as JSON), kept an hour
    ARGV[1] change id     ARGV[2] owner token ('' when the change is not running: cancel, expiry;
                          refused for a change whose apply may have reached the cloud)
    ARGV[3] now (ms)      ARGV[4] terminal state
    ARGV[5] fields to set (JSON object)
    ARGV[6] states it may leave, comma-separated (e.g. 'running' or 'queued,backing_off')
    ARGV[7] '1' when the change may be its account's circuit probe: it met a financial lock, or
            it is being cancelled (a cancel may come while it backs off as the probe). '0' saves
            the circuit read on the common path
    ARGV[8..] audit events (JSON): steps not yet recorded, then the terminal one, whose attempt
            is made the change's run count here
  Output:
    { 'done', nextHeadId or '', waiterId... }
    { 'lost_lease' } | { 'missing' }
    { 'wrong_state', state, again, waiterId... }   again is 'again' when this is this very call,
                                                   sent again after its answer was lost (the change
                                                   ended in ARGV[4] at ARGV[3]), else ''; waiters
                                                   only when this change is the probe that
                                                   released them
    { 'wrong_state', state, 'may_have_applied' }   no owner, and an apply may have been done: only
                                                   a run that retries and verifies it may end it
]]
local rcall = redis.call
--- @include "emit"

local fields = fieldPairs(ARGV[5])
local current = rcall('HMGET', KEYS[1], 'state', 'mayHaveApplied', 'runs', 'finishedAt')
local state = current[1]
if not state then return { 'missing' } end
if not string.find(',' .. ARGV[6] .. ',', ',' .. state .. ',', 1, true) then
  local again = state == ARGV[4] and current[4] == ARGV[3]
  local result = { 'wrong_state', state, again and 'again' or '' }
  if ARGV[7] == '1' then
    local release = rcall('HMGET', KEYS[7], 'probe', 'waiters')
    if release[1] == ARGV[1] then
      for _, waiter in ipairs(cjson.decode(release[2])) do result[#result + 1] = waiter end
    end
  end
  return result
end
if ARGV[2] ~= '' then
  if rcall('GET', KEYS[3]) ~= ARGV[2] then return { 'lost_lease' } end
  rcall('DEL', KEYS[3])
elseif current[2] == '1' then
  return { 'wrong_state', state, 'may_have_applied' }
end

-- A cancel builds its event from a read of the change made before this script: a run may have
-- started and backed off since. The event names the run the change ends in, as acquire.lua's do.
-- Text, not cjson: a decode and encode of every finish's event would cost the worker's own
-- finishes (already right) more than one search, and would turn an empty list into {}. The first
-- "attempt": is the event's own (encodeEvent writes it before the details; in a string the
-- quotes are escaped), so it alone is read and, when it differs, replaced.
if #ARGV >= 8 then
  local runs = current[3] or '0'
  local terminal = ARGV[#ARGV]
  local first, last, attempt = string.find(terminal, '"attempt":(%d+)')
  if attempt and attempt ~= runs then
    ARGV[#ARGV] = string.sub(terminal, 1, first - 1) .. '"attempt":' .. runs .. string.sub(terminal, last + 1)
  end
end

hsetFields(KEYS[1], fields, appendEvents(KEYS[4], 8, {
  'state', ARGV[4], 'step', 'done', 'finishedAt', ARGV[3], 'updatedAt', ARGV[3], 'owner', '', 'nextAt', '' }))
-- A running change is its lane's head; a cancelled one may be anywhere in the lane.
if state == 'running' then
  rcall('LPOP', KEYS[2])
else
  rcall('LREM', KEYS[2], 1, ARGV[1])
end
local nextHead = rcall('LINDEX', KEYS[2], 0)

local result = { 'done', nextHead or '' }
if ARGV[7] == '1' and rcall('HGET', KEYS[5], 'probe') == ARGV[1] then
  rcall('DEL', KEYS[5])
  local waiters = rcall('SMEMBERS', KEYS[6])
  for _, waiter in ipairs(waiters) do result[#result + 1] = waiter end
  rcall('DEL', KEYS[6])
  -- The waiters are woken by the caller. Should this answer be lost, the call sent again finds
  -- the change ended and answers them from here.
  rcall('HSET', KEYS[7], 'probe', ARGV[1], 'waiters', cjson.encode(waiters))
  rcall('PEXPIRE', KEYS[7], 3600000)
end
return result
