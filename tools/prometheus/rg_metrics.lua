-- Gearshift's INFO rg fields for Prometheus' redis_exporter (its -script option).
-- The exporter reads INFO ALL, which leaves module sections out in Redis 7, so it never sees
-- rg_* fields on its own. This script runs INFO rg and returns every numeric field as a flat
-- name/value list, which the exporter publishes as redis_script_values{key="rg_..."}.
-- Dictionary fields (rg_python_stats:a=1,b=2) become one entry per key: rg_python_stats_a.
local out = {}
local info = redis.call('INFO', 'rg')
for line in string.gmatch(info, '[^\r\n]+') do
  local name, value = string.match(line, '^(rg_[%w_]+):(.*)$')
  if name then
    if tonumber(value) then
      table.insert(out, name)
      table.insert(out, value)
    else
      for k, v in string.gmatch(value, '([%w_]+)=([^,]+)') do
        if tonumber(v) then
          table.insert(out, name .. '_' .. k)
          table.insert(out, v)
        end
      end
    end
  end
end
return out
