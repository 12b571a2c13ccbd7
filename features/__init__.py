"""Data: sources, landing, validation and the ETL into curated partitions (no models here)."""
