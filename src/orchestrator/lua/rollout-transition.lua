--[[
  Moves a rollout from one of the allowed states to another, with its audit events: the state and
  its event are written by one script (DESIGN invariant 5).

  Input:
    KEYS[1] rollout hash        KEYS[2] audit stream
    ARGV[1] now (ms)
    ARGV[2] states it may leave, comma-separated
    ARGV[3] new state
    ARGV[4] fields to set (JSON object of strings)
    ARGV[5..] audit events (JSON)
  Output:
    { 'done', previousState } | { 'missing' } | { 'wrong_state', state }
]]
local rcall = redis.call
--- @include "emit"

local fields = fieldPairs(ARGV[4])
local state = rcall('HGET', KEYS[1], 'state')
if not state then return { 'missing' } end
if not string.find(',' .. ARGV[2] .. ',', ',' .. state .. ',', 1, true) then return { 'wrong_state', state } end
hsetFields(KEYS[1], fields, appendEvents(KEYS[2], 5, { 'state', ARGV[3], 'updatedAt', ARGV[1] }))
return { 'done', state }
