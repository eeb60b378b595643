"""The prediction log: every answered prediction (single, /batch rows, hardness) recorded in a
database, off the request path, and what reads it back.

- ``entry``: what the request path hands over (cheap: a tuple's worth of references) and the row
  it becomes in the writer.
- ``queue``: the request path's side, a bounded in-memory queue per API worker; a full queue drops
  rows (counted), never a request.
- ``handover``, ``wire``, ``process``: under ``bentoml serve`` each API worker hands its queue to
  one writer process per instance over a Unix socket; that process makes the rows and writes them.
- ``writer``: the queue written in batches (one transaction each) by a background task, in the
  writer process (or in the API worker's own process outside a serve); a failing database drops
  rows (counted) and writing resumes by itself.
- ``store``, ``sqlite``, ``postgresql``: one interface, two databases (aiosqlite in WAL mode by
  default; asyncpg's pool with ``DATABASE_URL=postgresql://...``), the schema created and
  migrated from versioned SQL files (``migrations/<dialect>/NNNN_*.sql``).
- ``export``: the query route's JSON and CSV.
- ``drift``: the logged inputs against the serving model's training data.
- ``warmup``: the most requested materials computed before traffic needs them, and sweeps
  continued in the background.
"""
