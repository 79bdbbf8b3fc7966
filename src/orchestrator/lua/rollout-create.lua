--[[
  Creates a rollout in state `planning` with its targets and its `created` audit event.

  Input:
    KEYS[1] rollout hash        KEYS[2] rollouts index (zset)
    KEYS[3] rollout targets hash                 KEYS[4] audit stream
    ARGV[1] rollout id          ARGV[2] now (ms)
    ARGV[3] rollout fields (JSON object of strings)
    ARGV[4] targets (JSON array of JSON strings; target i is stored under field i-1)
    ARGV[5] the `rollout_created` audit event (JSON)
  Output:
    { 'created', rolloutId }    (also when this very call ran before and its answer was lost)
]]
local rcall = redis.call
--- @include "emit"

if rcall('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1]) == 0 then return { 'created', ARGV[1] } end

local targets = cjson.decode(ARGV[4])
local chunk = {}
for i, target in ipairs(targets) do
  chunk[#chunk + 1] = tostring(i - 1)
  chunk[#chunk + 1] = target
  -- unpack has a stack limit: write a few hundred fields per HSET.
  if #chunk >= 1000 then
    rcall('HSET', KEYS[3], unpack(chunk))
    chunk = {}
  end
end
if #chunk > 0 then rcall('HSET', KEYS[3], unpack(chunk)) end

local fields = appendEvents(KEYS[4], 5, { 'state', 'planning', 'createdAt', ARGV[2], 'updatedAt', ARGV[2] })
hsetFields(KEYS[1], ARGV[3], fields)
return { 'created', ARGV[1] }
