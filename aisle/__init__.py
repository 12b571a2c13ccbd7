"""Aisle: MLOps for an online shop's recommender and pricing models."""

__version__ = "0.1.0"
