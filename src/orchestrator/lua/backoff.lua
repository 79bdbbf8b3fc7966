--[[
  Moves a running change to `backing_off`: it keeps its place at the head of its lane, gives its
  lease back and frees its worker; the job is delayed by the caller. Optionally opens the
  account's circuit with this change as the probe; a probe that backs off for any reason moves
  the circuit's deadline to its own next attempt, so the changes waiting on it sleep until then.

  Input:
    KEYS[1] change hash   KEYS[2] lock (lease)   KEYS[3] audit stream   KEYS[4] account circuit
    ARGV[1] change id     ARGV[2] owner token    ARGV[3] now (ms)       ARGV[4] delay (ms)
    ARGV[5] cloud error code
    ARGV[6] fields to set (JSON object)
    ARGV[7] '1' to open (or extend) the account circuit until now + delay, with this change as
            its probe; it expires an hour after that in case the probe is never run again
    ARGV[8..] audit events (JSON): steps not yet recorded, then the backoff itself
  Output: 'ok' | 'lost_lease'
]]
local rcall = redis.call
--- @include "emit"

local fields = fieldPairs(ARGV[6])
if rcall('GET', KEYS[2]) ~= ARGV[2] then
  -- Backing off under this very owner token already: this call ran before and its answer was
  -- lost with the connection (ioredis sent it again). The same backoff, not a lost lease, which
  -- would fail the job and have it run again at once instead of after the delay.
  local current = rcall('HMGET', KEYS[1], 'state', 'owner')
  if current[1] == 'backing_off' and current[2] == ARGV[2] then return 'ok' end
  return 'lost_lease'
end
rcall('DEL', KEYS[2])
local wakeAt = tonumber(ARGV[3]) + tonumber(ARGV[4])
hsetFields(KEYS[1], fields, appendEvents(KEYS[3], 8,
  { 'state', 'backing_off', 'lastCode', ARGV[5], 'nextAt', tostring(wakeAt), 'updatedAt', ARGV[3] }))
if ARGV[7] == '1' or rcall('HGET', KEYS[4], 'probe') == ARGV[1] then
  rcall('HSET', KEYS[4], 'until', tostring(wakeAt), 'probe', ARGV[1])
  rcall('PEXPIRE', KEYS[4], tonumber(ARGV[4]) + 3600000)
end
return 'ok'
