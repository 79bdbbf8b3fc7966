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
--- @include "bucket"

local bucket = loadBucket(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
-- Whatever was saved up is spent too: the cloud just said there is nothing left.
bucket.tokens = math.min(bucket.tokens, 0) - tonumber(ARGV[3]) * bucket.rate
saveBucket(bucket)
return tostring(bucket.tokens)
