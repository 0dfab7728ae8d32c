-- W4: count the records whose age is over 50.
local cursor = "0"
local n = 0
repeat
  local reply = redis.call("SCAN", cursor, "MATCH", ARGV[1], "COUNT", 1000)
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do
    if tonumber(redis.call("HGET", key, "age")) > 50 then n = n + 1 end
  end
until cursor == "0"
return n
