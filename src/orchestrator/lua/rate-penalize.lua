--[[
  Slows an API rate bucket after the cloud throttled a call: the bucket owes the tokens of `ms`
  milliseconds on top of what it had, so every reservation after this one, by any worker, waits
  that much longer (rate-take.lua describes the bucket).

  Input:
    KEYS[1] bucket hash
    ARGV[1] rate (tokens per second, > 0)
    ARGV[2] burst (tokens, >= 1)
    ARGV[3] penalty (ms, > 0)
  Output: the bucket's tokens after the penalty (negative: owed), as a string
]]
local rcall = redis.call
local time = rcall('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local rate = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])

local saved = rcall('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(saved[1]) or burst
local at = tonumber(saved[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
-- Whatever was saved up is spent too: the cloud just said there is nothing left.
tokens = math.min(tokens, 0) - tonumber(ARGV[3]) * rate

rcall('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
rcall('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return tostring(tokens)
