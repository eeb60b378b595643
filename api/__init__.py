"""What the HTTP layer needs beyond BentoML: request/response schemas, error bodies, the
domain check and the response builder. service.py stays a thin wiring of these."""
