CREATE TABLE predictions (
    id BIGSERIAL PRIMARY KEY,
    ts DOUBLE PRECISION NOT NULL,
    family TEXT NOT NULL,
    kind TEXT NOT NULL,
    material_key TEXT NOT NULL,
    material TEXT NOT NULL,
    model_tag TEXT NOT NULL,
    outputs TEXT NOT NULL,
    warnings TEXT NOT NULL,
    n_warnings INTEGER NOT NULL,
    cached BOOLEAN NOT NULL,
    latency_ms DOUBLE PRECISION,
    api_key_id TEXT,
    request_id TEXT
);
CREATE INDEX predictions_ts ON predictions (ts);
CREATE INDEX predictions_material ON predictions (material_key);
