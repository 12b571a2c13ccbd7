"""Drift and data-quality checks with Evidently, and their reports."""
