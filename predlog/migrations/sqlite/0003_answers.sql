-- An answer's columns (material, model, values and intervals, warnings, options) once per answer in
-- `answers`, referred to by each of its rows: a repeat's row holds only what is per request. The
-- existing rows' answers are gathered (one per material, model, options, outputs and warnings,
-- keyed by 'm' and the first such row's id) and every row keeps its id, time and columns.
-- SQLite cannot drop indexed columns or add a NOT NULL one: the table is built again.
CREATE TABLE answers (
    answer_key TEXT PRIMARY KEY,
    material_key TEXT NOT NULL,
    material TEXT NOT NULL,
    model_tag TEXT NOT NULL,
    outputs TEXT NOT NULL,
    warnings TEXT NOT NULL,
    n_warnings INTEGER NOT NULL,
    options TEXT NOT NULL
);
INSERT INTO answers
    SELECT 'm' || MIN(id), material_key, MAX(material), model_tag, outputs, warnings, MAX(n_warnings), options
    FROM predictions GROUP BY material_key, model_tag, options, outputs, warnings;
CREATE TABLE predictions_0003 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    family TEXT NOT NULL,
    kind TEXT NOT NULL,
    answer_key TEXT NOT NULL,
    cached INTEGER NOT NULL,
    latency_ms REAL,
    api_key_id TEXT,
    request_id TEXT
);
INSERT INTO predictions_0003
    SELECT p.id, p.ts, p.family, p.kind, a.answer_key, p.cached, p.latency_ms, p.api_key_id, p.request_id
    FROM predictions p JOIN answers a ON a.material_key = p.material_key AND a.model_tag = p.model_tag
        AND a.options = p.options AND a.outputs = p.outputs AND a.warnings = p.warnings;
DROP TABLE predictions;
ALTER TABLE predictions_0003 RENAME TO predictions;
CREATE INDEX predictions_ts ON predictions (ts);
-- what the readers read: the rows as they were before 0003
CREATE VIEW prediction_log AS
    SELECT p.id, p.ts, p.family, p.kind, a.material_key, a.material, a.model_tag, a.outputs, a.warnings,
        a.n_warnings, p.cached, p.latency_ms, p.api_key_id, p.request_id, a.options
    FROM predictions p JOIN answers a ON a.answer_key = p.answer_key
