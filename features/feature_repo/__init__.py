"""The Feast repository: feature_store.yaml (local), feature_store.production.yaml, definitions."""
