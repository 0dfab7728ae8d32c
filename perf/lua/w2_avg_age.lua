-- W2: average of the age field. Returned as a string: Lua numbers become integers in replies.
local cursor = "0"
local sum, n = 0, 0
repeat
  local reply = redis.call("SCAN", cursor, "MATCH", ARGV[1], "COUNT", 1000)
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do
    sum = sum + tonumber(redis.call("HGET", key, "age"))
    n = n + 1
  end
until cursor == "0"
if n == 0 then return false end
return string.format("%.17g", sum / n)
