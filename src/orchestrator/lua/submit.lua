--[[
  Creates a change in state `queued` at the tail of its server's lane, with its audit event; or,
  when the approval policy caught it, in state `awaiting_approval` outside any lane (it blocks
  nobody until approve.lua puts it in its lane).

  A rollout's change (KEYS[7] and KEYS[8] given) is created only while the rollout hash is in
  state `running`: a pause or cancel, itself one script on that hash, is then either
  before this script (nothing is created) or after it (the change exists and is recorded in the
  rollout's changes, in this same script, for the pause or cancel to find).

  Input:
    KEYS[1] change hash            KEYS[2] lane list
    KEYS[3] changes index (zset)   KEYS[4] server changes index (zset)
    KEYS[5] idempotency key        KEYS[6] audit stream
    KEYS[7] rollout hash           KEYS[8] rollout changes hash   (both only for a rollout's change)
    ARGV[1] change id              ARGV[2] now (ms)
    ARGV[3] body hash for the idempotency key ('' when the submission has none)
    ARGV[4] idempotency retention (ms)
    ARGV[5] change fields (JSON object of strings)
    ARGV[6] initial state: 'queued' or 'awaiting_approval'
    ARGV[7] the rollout's target index, the field of KEYS[8] ('' without KEYS[7])
    ARGV[8] the `submitted` audit event (JSON; last, for appendEvents)
  Output:
    { 'created', changeId, lanePosition (1 = head; 0 when it has left its lane already) }
    { 'existing', changeId }       the idempotency key was used before with the same body
    { 'mismatch', changeId }       ... with another body
    { 'held', rolloutState }       the rollout is not `running` ('' when it is gone): nothing
                                   was written
]]
local rcall = redis.call
--- @include "emit"

local rollout = KEYS[7]
local changeFields = fieldPairs(ARGV[5])

-- This very call ran before and its answer was lost with the connection (ioredis sends it again):
-- the same answer, without a second lane entry or event.
local function createdBefore()
  local index = rcall('LPOS', KEYS[2], ARGV[1])
  return { 'created', ARGV[1], index and index + 1 or 0 }
end

if ARGV[3] ~= '' then
  local previous = rcall('GET', KEYS[5])
  if previous then
    local separator = string.find(previous, ' ', 1, true)
    local previousId = string.sub(previous, 1, separator - 1)
    if string.sub(previous, separator + 1) == ARGV[3] then
      -- Created before (perhaps by a controller that died before recording it): record it now.
      if rollout then rcall('HSET', KEYS[8], ARGV[7], previousId) end
      return { 'existing', previousId }
    end
    return { 'mismatch', previousId }
  end
end

if rollout then
  local rolloutState = rcall('HGET', rollout, 'state')
  if rolloutState ~= 'running' then
    -- Unless this very call ran before, while the rollout still ran.
    if rcall('ZSCORE', KEYS[3], ARGV[1]) then return createdBefore() end
    return { 'held', rolloutState or '' }
  end
end
if ARGV[3] ~= '' then rcall('SET', KEYS[5], ARGV[1] .. ' ' .. ARGV[3], 'PX', ARGV[4]) end

-- The change id is new with each submission: finding it in the index already means this very call
-- ran before. (With an idempotency key, the block above answered.)
if rcall('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[1]) == 0 then return createdBefore() end
if rollout then rcall('HSET', KEYS[8], ARGV[7], ARGV[1]) end

local fields = appendEvents(KEYS[6], 8, { 'state', ARGV[6], 'runs', '0', 'createdAt', ARGV[2], 'updatedAt', ARGV[2] })
hsetFields(KEYS[1], changeFields, fields)
rcall('ZADD', KEYS[4], ARGV[2], ARGV[1])
if ARGV[6] ~= 'queued' then return { 'created', ARGV[1], 0 } end
return { 'created', ARGV[1], rcall('RPUSH', KEYS[2], ARGV[1]) }
