-- W5: count the keys only (no value read), like GB('KeysOnlyReader').count().
local cursor = "0"
local n = 0
repeat
  local reply = redis.call("SCAN", cursor, "MATCH", ARGV[1], "COUNT", 1000)
  cursor = reply[1]
  n = n + #reply[2]
until cursor == "0"
return n
