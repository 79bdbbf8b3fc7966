--[[
  Claims the right to roll back a rollout: records the id its rollback will have, unless another
  call claimed it since the caller looked (compare and set), so two calls never both create one.

  Input:
    KEYS[1] rollout hash (the rollout rolled back)
    ARGV[1] the rollback id the caller saw ('' for none)
    ARGV[2] the new rollback's id
    ARGV[3] now (ms)
  Output:
    { 'claimed' } | { 'taken', id, claimedAt } | { 'missing' }
]]
local rcall = redis.call

if rcall('EXISTS', KEYS[1]) == 0 then return { 'missing' } end
local current = rcall('HGET', KEYS[1], 'rollbackId') or ''
if current ~= ARGV[1] then
  return { 'taken', current, rcall('HGET', KEYS[1], 'rollbackClaimedAt') or '0' }
end
rcall('HSET', KEYS[1], 'rollbackId', ARGV[2], 'rollbackClaimedAt', ARGV[3])
return { 'claimed' }
