"""How requests reach the routes and leave them: the FastAPI app's middleware, body and head deadlines,
strict JSON, API keys and rate limits, error bodies, and exact repeats answered before parsing."""
