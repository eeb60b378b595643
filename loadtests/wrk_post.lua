-- wrk script: POST the documented example (without feature importance) as JSON.
--   wrk -t2 -c64 -d10s -s loadtests/wrk_post.lua --latency http://127.0.0.1:3000/api/v1/predict/mechanical
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"composition": {"SiC": 0.6, "B4C": 0.3, "Al2O3": 0.1, "WC": 0.0, "TiC": 0.0},
 "processing": {"sintering_temperature": 1800, "pressure": 50, "grain_size": 10, "holding_time": 120,
                "heating_rate": 15, "atmosphere": "argon"},
 "microstructure": {"porosity": 0.02, "phase_distribution": "uniform", "interface_quality": "good",
                    "pore_size": 1.0, "connectivity": 0.1},
 "include_uncertainty": true, "include_feature_importance": false}]]
