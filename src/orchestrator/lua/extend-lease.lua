--[[
  Renews a lease, by its owner only.

  Input:  KEYS[1] lock   ARGV[1] owner token   ARGV[2] lease (ms)
  Output: 1 renewed, 0 the lease is not ours any more
]]
local rcall = redis.call
if rcall('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return rcall('PEXPIRE', KEYS[1], ARGV[2])
