"""POST /api/v1/design: the thin HTTP face of the design search (design/)."""
