--[[
  Takes the server's lease for a change that is at the head of its lane, and moves the change to
  `running`. This is the only way into `running`: with the lane head check it keeps at most one
  change per server between lock and unlock (DESIGN invariant 2), in lane order (invariant 3).

  Input:
    KEYS[1] change hash       KEYS[2] change events list   KEYS[3] lane list
    KEYS[4] lock (lease)      KEYS[5] audit stream
    KEYS[6] account circuit   KEYS[7] circuit waiters set
    ARGV[1] change id         ARGV[2] owner token          ARGV[3] lease (ms)
    ARGV[4] now (ms)          ARGV[5] actor
  Output:
    { 'acquired', field, value, ... }   the change hash after the transition
    { 'missing' } | { 'terminal', state } | { 'not_head', headId }
    { 'locked', pttl }                   another owner's lease is still live
    { 'circuit', untilMs }               the account's circuit is open and this is not its probe:
                                         it waits, without calling the cloud, until the probe ends
]]
local rcall = redis.call
--- @include "emit"

local state = rcall('HGET', KEYS[1], 'state')
if not state then return { 'missing' } end
if state ~= 'queued' and state ~= 'backing_off' and state ~= 'running' then return { 'terminal', state } end
local head = rcall('LINDEX', KEYS[3], 0)
if head ~= ARGV[1] then return { 'not_head', head or '' } end

local circuit = rcall('HMGET', KEYS[6], 'until', 'probe')
if circuit[2] and circuit[2] ~= ARGV[1] then
  rcall('SADD', KEYS[7], ARGV[1])
  if rcall('HGET', KEYS[1], 'lastCode') ~= 'CircuitOpen' then
    rcall('HSET', KEYS[1], 'state', 'backing_off', 'lastCode', 'CircuitOpen', 'updatedAt', ARGV[4])
    emit(KEYS[1], KEYS[2], KEYS[5], ARGV[1], ARGV[4], ARGV[5], 'backoff',
      { code = 'CircuitOpen', delayMs = math.max(0, tonumber(circuit[1]) - tonumber(ARGV[4])) })
  end
  return { 'circuit', circuit[1] }
end

local holder = rcall('GET', KEYS[4])
if holder and holder ~= ARGV[2] then return { 'locked', rcall('PTTL', KEYS[4]) } end
rcall('SET', KEYS[4], ARGV[2], 'PX', ARGV[3])
rcall('HINCRBY', KEYS[1], 'runs', 1)
rcall('HSET', KEYS[1], 'state', 'running', 'step', 'locked', 'owner', ARGV[2], 'updatedAt', ARGV[4])
emit(KEYS[1], KEYS[2], KEYS[5], ARGV[1], ARGV[4], ARGV[5], 'running', nil)
local result = rcall('HGETALL', KEYS[1])
table.insert(result, 1, 'acquired')
return result
