"""Training, evaluation, versioning and loading of the models (BentoML model store)."""
