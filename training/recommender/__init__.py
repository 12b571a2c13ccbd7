"""The recommender: splits, metrics, baselines and the model (issue 4, in progress)."""
