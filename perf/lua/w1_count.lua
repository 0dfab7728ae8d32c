-- W1: count the records (each hash is read, as GB() reads it). ARGV[1] = MATCH pattern.
local cursor = "0"
local n = 0
repeat
  local reply = redis.call("SCAN", cursor, "MATCH", ARGV[1], "COUNT", 1000)
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do
    local h = redis.call("HGETALL", key)
    if #h > 0 then n = n + 1 end
  end
until cursor == "0"
return n
