-- W3: count per family name (the second word of name). Returns a flat [family, count, ...] array.
local cursor = "0"
local counts = {}
repeat
  local reply = redis.call("SCAN", cursor, "MATCH", ARGV[1], "COUNT", 1000)
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do
    local name = redis.call("HGET", key, "name")
    local family = string.match(name, "^[^ ]* ([^ ]*)")
    counts[family] = (counts[family] or 0) + 1
  end
until cursor == "0"
local out = {}
for family, c in pairs(counts) do
  out[#out + 1] = family
  out[#out + 1] = c
end
return out
