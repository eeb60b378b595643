-- wrk script: 70 % of requests repeat one of 100 materials, 30 % are new (porosity and grain size
-- stepped per thread), the "mixed" load of issue 12.
--   wrk -t2 -c64 -d10s -s loadtests/wrk_mixed.lua --latency http://127.0.0.1:3000/api/v1/predict/mechanical
local counter = 0
local base = 0  -- this thread's first material: setup's per-thread offset (the global thread_offset,
                -- which a local of that name would hide) plus the first script argument
                -- (`-- 200000`), so a run need not repeat an earlier run's materials
local threads = {}

function setup(thread)
  thread:set("thread_offset", #threads * 1000003)
  table.insert(threads, thread)
end

function init(args)
  base = (thread_offset or 0) + (tonumber(args[1]) or 0)
end

local function body(grain, porosity)
  return string.format([[{"composition": {"SiC": 0.6, "B4C": 0.3, "Al2O3": 0.1},
 "processing": {"sintering_temperature": 1800, "pressure": 50, "grain_size": %.4f, "holding_time": 120,
                "heating_rate": 15, "atmosphere": "argon"},
 "microstructure": {"porosity": %.5f, "phase_distribution": "uniform", "interface_quality": "good",
                    "pore_size": 1.0, "connectivity": 0.1},
 "include_uncertainty": true, "include_feature_importance": false}]], grain, porosity)
end

request = function()
  counter = counter + 1
  local n = counter + base
  local b
  if (n * 7919) % 10 < 7 then
    local k = (n * 104729) % 100  -- one of 100 repeated materials
    b = body(20.0 + k / 10.0, 0.15 + k / 1000.0)
  else
    b = body(1.0 + (math.floor(n / 2990) % 997) / 10.0, 0.001 + (n % 2990) / 10000.0)
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, b)
end
