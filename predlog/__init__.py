"""The prediction log: every answered prediction (single, /batch rows, hardness) recorded in a
database, off the request path, and what reads it back.

- ``entry``: what the request path hands over (cheap: a tuple's worth of references) and the row
  it becomes in the writer.
- ``writer``: a bounded in-memory queue per API worker, written in batches (one transaction each)
  by a background task; a full queue or a failing database drops rows (counted), never a request.
- ``store``, ``sqlite``, ``postgresql``: one interface, two databases (aiosqlite in WAL mode by
  default; asyncpg's pool with ``DATABASE_URL=postgresql://...``), the schema created and
  migrated from versioned SQL files (``migrations/<dialect>/NNNN_*.sql``).
- ``export``: the query route's JSON and CSV.
- ``drift``: the logged inputs against the serving model's training data.
- ``warmup``: the most requested materials computed before traffic needs them, and sweeps
  continued in the background.
"""
