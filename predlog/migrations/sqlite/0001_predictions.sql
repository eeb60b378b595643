CREATE TABLE predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    family TEXT NOT NULL,
    kind TEXT NOT NULL,
    material_key TEXT NOT NULL,
    material TEXT NOT NULL,
    model_tag TEXT NOT NULL,
    outputs TEXT NOT NULL,
    warnings TEXT NOT NULL,
    n_warnings INTEGER NOT NULL,
    cached INTEGER NOT NULL,
    latency_ms REAL,
    api_key_id TEXT,
    request_id TEXT
);
CREATE INDEX predictions_ts ON predictions (ts);
CREATE INDEX predictions_material ON predictions (material_key);
