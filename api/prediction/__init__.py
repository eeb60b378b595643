"""The one prediction flow every family shares: request schemas, canonical keys, caches, the domain
check, feature extraction, the coalescer and predictor that call the runner, and the response
builder."""
