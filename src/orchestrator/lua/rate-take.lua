--[[
  Takes one token of an API rate bucket (one access key and action), shared by every worker: a
  token bucket of `burst` tokens refilled continuously at `rate` per second, on Redis's clock
  (TIME), so workers on machines whose clocks disagree still share one timeline.

  The token is reserved, not polled for: when none is left the bucket goes into debt and the
  caller is told how long to wait for the token it now owns. One call per cloud call, however
  many callers wait, and callers are served in the order they asked. A penalty (rate-penalize)
  deepens the debt, so it delays every reservation made after it.

  Input:
    KEYS[1] bucket hash: `tokens` (may be negative: tokens owed), `at` (ms of the last refill)
    ARGV[1] rate (tokens per second, > 0)
    ARGV[2] burst (tokens, >= 1)
  Output: milliseconds the caller waits before sending its call (0: send now)
]]
local rcall = redis.call
--- @include "bucket"

local bucket = loadBucket(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
bucket.tokens = bucket.tokens - 1
saveBucket(bucket)
-- A hair of slack for float rounding, so a token exactly due is not made to wait a millisecond.
if bucket.tokens >= -1e-9 then return 0 end
return math.ceil(-bucket.tokens / bucket.rate)
