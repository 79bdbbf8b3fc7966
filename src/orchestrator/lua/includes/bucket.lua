-- The API rate bucket of rate-take.lua and rate-penalize.lua: `tokens` (negative: owed) refilled
-- continuously at `rate` per second up to `burst`, on Redis's clock (TIME), so workers whose
-- clocks disagree still share one timeline.
local function loadBucket(key, ratePerSecond, burst)
  local time = rcall('TIME')
  local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
  local bucket = { key = key, rate = ratePerSecond / 1000, burst = burst }
  local saved = rcall('HMGET', key, 'tokens', 'at')
  bucket.tokens = tonumber(saved[1]) or burst
  bucket.at = tonumber(saved[2]) or now
  -- A clock that went back (a failover to a replica running behind) refills nothing until it catches up.
  if now > bucket.at then
    bucket.tokens = math.min(burst, bucket.tokens + (now - bucket.at) * bucket.rate)
    bucket.at = now
  end
  return bucket
end

local function saveBucket(bucket)
  rcall('HSET', bucket.key, 'tokens', tostring(bucket.tokens), 'at', tostring(bucket.at))
  -- Gone once it would be full again: a bucket created afresh is exactly that bucket.
  rcall('PEXPIRE', bucket.key, math.ceil((bucket.burst - bucket.tokens) / bucket.rate) + 1000)
end
