"""Model training: `recommender/` and `pricing/` (model, train, evaluate), registry and gates."""
