"""Material descriptions to model features: phase table, schema, vectorised featurizer."""
