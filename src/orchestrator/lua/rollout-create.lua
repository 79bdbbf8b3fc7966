--[[
  Creates a rollout in state `planning` with its targets and its `created` audit event.

  The targets are not arguments: a rollout of 10,000 targets is some 25 MB, one command that
  would hold Redis (and outlast the producer's command timeout) while it is decoded. The caller
  writes them beforehand into a staging hash of its own (field i = target i, with a TTL in case it
  dies before this runs), which this renames into place, so that they still appear together with
  the rollout or not at all.

  Input:
    KEYS[1] rollout hash        KEYS[2] rollouts index (zset)
    KEYS[3] rollout targets hash                 KEYS[4] audit stream
    KEYS[5] the staged targets (a hash; absent when there are none)
    ARGV[1] rollout id          ARGV[2] now (ms)
    ARGV[3] rollout fields (JSON object of strings)
    ARGV[4] how many targets were staged
    ARGV[5] the `rollout_created` audit event (JSON)
  Output:
    { 'created', rolloutId }
    { 'existing', rolloutId }   the id was created before: by this very call, whose answer was
                                 lost with the connection, or by another call under the same
                                 Idempotency-Key (the staged copy is dropped; nothing is written)
    { 'incomplete', staged }    fewer targets staged than announced (the staging hash expired):
                                 nothing is created
]]
local rcall = redis.call
--- @include "emit"

local rolloutFields = fieldPairs(ARGV[3])
if rcall('ZSCORE', KEYS[2], ARGV[1]) then
  rcall('DEL', KEYS[5])
  return { 'existing', ARGV[1] }
end

local count = tonumber(ARGV[4])
if count > 0 then
  local staged = rcall('HLEN', KEYS[5])
  if staged ~= count then
    rcall('DEL', KEYS[5])
    return { 'incomplete', staged }
  end
  rcall('RENAME', KEYS[5], KEYS[3])
  rcall('PERSIST', KEYS[3])
end
rcall('ZADD', KEYS[2], ARGV[2], ARGV[1])

local fields = appendEvents(KEYS[4], 5, { 'state', 'planning', 'createdAt', ARGV[2], 'updatedAt', ARGV[2] })
hsetFields(KEYS[1], rolloutFields, fields)
return { 'created', ARGV[1] }
