--[[
  Records progress of a running change while its owner holds the lease, and renews the lease:
  every step is also a heartbeat, and the last check before an apply that the server is still ours.

  Input:
    KEYS[1] change hash   KEYS[2] lock (lease)   KEYS[3] audit stream
    ARGV[1] owner token   ARGV[2] lease (ms)     ARGV[3] now (ms)       ARGV[4] step name
    ARGV[5] fields to set (JSON object)
    ARGV[6..] audit events (JSON)
  Output: 'ok' | 'lost_lease'
]]
local rcall = redis.call
--- @include "emit"

local fields = fieldPairs(ARGV[5])
if rcall('GET', KEYS[2]) ~= ARGV[1] then return 'lost_lease' end
rcall('PEXPIRE', KEYS[2], ARGV[2])
-- The step is recorded already: this call ran before and its answer was lost with the connection.
if rcall('HGET', KEYS[1], 'step') == ARGV[4] then return 'ok' end
hsetFields(KEYS[1], fields, appendEvents(KEYS[3], 6, { 'step', ARGV[4], 'updatedAt', ARGV[3] }))
return 'ok'
