--[[
  Takes the server's lease for a change that is at the head of its lane, and moves the change to
  `running`. This is the only way into `running`: with the lane head check it keeps at most one
  change per server between lock and unlock (DESIGN invariant 2), in lane order (invariant 3).

  Input:
    KEYS[1] change hash       KEYS[2] lane list            KEYS[3] lock (lease)
    KEYS[4] audit stream
    ARGV[1] change id         ARGV[2] owner token          ARGV[3] lease (ms)
    ARGV[4] now (ms)
    ARGV[5] audit event template (JSON; type, attempt, region and delay are filled in here)
    ARGV[6] circuit key prefix: the account circuit is <prefix><profile>, its waiters set
            <prefix><profile>:waiters (built here from the change's own profile, under the same
            hash tag, which saves the caller a read before every run)
    ARGV[7..] the change fields to return; the first six must be state, runs, lastCode, regionId,
            profile, nextAt
  Output:
    { 'acquired', value... }             the fields asked for, after the transition
    { 'missing' } | { 'terminal', state } | { 'not_head', headId }
    { 'locked', pttl }                   another owner's lease is still live
    { 'early', ms }                      backing off until nextAt, which is ms away: its job woke
                                         early (a retry of a job whose delay was never set)
    { 'circuit', untilMs, profile }      the account's circuit is open and this is not its probe:
                                         it waits, without calling the cloud, until the probe ends
]]
local rcall = redis.call
--- @include "emit"

local names = {}
for i = 7, #ARGV do names[#names + 1] = ARGV[i] end
local change = rcall('HMGET', KEYS[1], unpack(names))
local state = change[1]
if not state then return { 'missing' } end
if state ~= 'queued' and state ~= 'backing_off' and state ~= 'running' then return { 'terminal', state } end
local head = rcall('LINDEX', KEYS[2], 0)
if head ~= ARGV[1] then return { 'not_head', head or '' } end

-- The lease before the circuit: a change running under a live owner stays that owner's, whatever
-- the circuit says; only a change that could run now may be turned into a waiter.
local holder = rcall('GET', KEYS[3])
if holder and holder ~= ARGV[2] then return { 'locked', rcall('PTTL', KEYS[3]) } end
-- Already running under this very owner token (unique to one pick-up of the job): this call ran
-- before and its answer was lost with the connection. The same run, not a second one.
if holder == ARGV[2] and state == 'running' then
  table.insert(change, 1, 'acquired')
  return change
end
if state == 'backing_off' and change[6] and tonumber(change[6]) > tonumber(ARGV[4]) then
  return { 'early', tonumber(change[6]) - tonumber(ARGV[4]) }
end

local event = cjson.decode(ARGV[5])
event.attempt = tonumber(change[2])
event.regionId = change[4]
local circuitKey = ARGV[6] .. (change[5] or 'default')
local circuit = rcall('HMGET', circuitKey, 'until', 'probe')
if circuit[2] and circuit[2] ~= ARGV[1] then
  rcall('SADD', circuitKey .. ':waiters', ARGV[1])
  -- Written once per wait: a waiter's job woken to find the circuit still open is waiting already.
  -- Not a run that died after it had waited before (still `running`, its lastCode kept).
  if state ~= 'backing_off' or change[3] ~= 'CircuitOpen' then
    event.type = 'backoff'
    event.code = 'CircuitOpen'
    event.delayMs = math.max(0, tonumber(circuit[1]) - tonumber(ARGV[4]))
    local body = cjson.encode(event)
    local id = rcall('XADD', KEYS[4], '*', 'e', body)
    rcall('HSET', KEYS[1], 'state', 'backing_off', 'lastCode', 'CircuitOpen', 'updatedAt', ARGV[4], 'e:' .. id, body)
  end
  return { 'circuit', circuit[1], change[5] or 'default' }
end

rcall('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
local runs = tonumber(change[2]) + 1
event.type = 'running'
event.attempt = runs
local body = cjson.encode(event)
local id = rcall('XADD', KEYS[4], '*', 'e', body)
rcall('HSET', KEYS[1], 'state', 'running', 'step', 'locked', 'owner', ARGV[2], 'runs', runs, 'updatedAt', ARGV[4], 'e:' .. id, body)
change[1] = 'running'
change[2] = tostring(runs)
table.insert(change, 1, 'acquired')
return change
