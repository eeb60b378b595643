"""Many materials in one request: the formats (JSON, CSV, NDJSON, gzip), the batch flow through the
prediction pieces in blocks, screening (where/rank/top) and the /batch routes."""
