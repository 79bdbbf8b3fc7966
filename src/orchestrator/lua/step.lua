--[[
  Records progress of a running change (dry run passed, applied) while its owner holds the lease,
  and renews the lease: every step is also a heartbeat.

  Input:
    KEYS[1] change hash   KEYS[2] change events list   KEYS[3] lock (lease)   KEYS[4] audit stream
    ARGV[1] change id     ARGV[2] owner token          ARGV[3] lease (ms)     ARGV[4] now (ms)
    ARGV[5] actor         ARGV[6] step name (also the event type)
    ARGV[7] fields to set (JSON object)                ARGV[8] event details (JSON)
  Output: 'ok' | 'lost_lease'
]]
local rcall = redis.call
--- @include "emit"

if rcall('GET', KEYS[3]) ~= ARGV[2] then return 'lost_lease' end
rcall('PEXPIRE', KEYS[3], ARGV[3])
hsetPairs(KEYS[1], ARGV[7], { 'step', ARGV[6], 'updatedAt', ARGV[4] })
emit(KEYS[1], KEYS[2], KEYS[4], ARGV[1], ARGV[4], ARGV[5], ARGV[6], decodeExtra(ARGV[8]))
return 'ok'
