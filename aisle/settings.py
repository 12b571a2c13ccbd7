"""One settings object for the whole system, read from the environment (prefix `AISLE_`).

Nothing happens at import: call `get_settings()` where the value is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Built-in sources; anything else in a source setting is a path to a file in the canonical schema.
BUILTIN_SOURCES = ("movielens", "orange_juice", "simulator")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AISLE_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    data_dir: Path = Field(
        default=Path("data"),
        description="Root of every store Aisle writes locally: sources, raw, curated, quarantine.",
    )
    interactions_source: str = Field(
        default="movielens",
        description="Where interaction events come from: movielens, simulator, or the path of a "
        "CSV/parquet file in the canonical interactions schema (a shop's own export).",
    )
    sales_source: str = Field(
        default="orange_juice",
        description="Where weekly sales come from: orange_juice, simulator, or the path of a "
        "CSV/parquet file in the canonical sales schema.",
    )
    interactions_schedule: str = Field(
        default="@daily",
        description="Cron schedule of the ingest_interactions DAG; each run is one data interval.",
    )
    features_sweep_schedule: str = Field(
        default="@hourly",
        description="When the features DAG also runs on its own, to pick up curated intervals "
        "whose Asset events Airflow dropped (apache/airflow#56050).",
    )
    sales_schedule: str = Field(
        default="0 0 * * 4",
        description="Cron schedule of the ingest_sales DAG (default: weekly from Thursday, the "
        "day Dominick's weeks start).",
    )
    allow_extra_columns: bool = Field(
        default=False,
        description="Accept raw files with columns beyond the canonical schema (they are dropped "
        "and listed in the run summary). Off: such a file is rejected with a clear error.",
    )
    simulator: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the shop simulator's configuration, e.g. "
        "AISLE_SIMULATOR__EVENTS=200000 or AISLE_SIMULATOR__DRIFT__TASTE_SHIFT_AT=2024-03-01.",
    )
    profile: Literal["local", "production"] = Field(
        default="local",
        description="local: files, SQLite (nothing to install). production: PostgreSQL and "
        "Redis (AISLE_FEAST_REGISTRY_URL, AISLE_FEAST_REDIS).",
    )
    feast_offline_store: Literal["duckdb", "file"] = Field(
        default="duckdb",
        description="Feast's offline store over the feature tables: DuckDB (the measured "
        "default, benchmarks/training_set.py) or Feast's pandas/dask file store.",
    )
    feast_registry_url: str | None = Field(
        default=None, description="SQLAlchemy URL of Feast's SQL registry (production profile)."
    )
    feast_redis: str | None = Field(
        default=None, description="Feast's Redis connection string (production profile)."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI. Unset: a SQLite store under <data_dir>/mlflow (local "
        "profile). The production profile needs one, e.g. postgresql://user@host:5432/mlflow "
        "or http://mlflow:5000.",
    )
    recommender_schedule: str = Field(
        default="@weekly", description="When the recommender_training DAG retrains (cron)."
    )
    recommender_valid_days: int = Field(
        default=28, gt=0, description="Days before the test window the recommender validates on."
    )
    recommender_test_days: int = Field(
        default=28, gt=0, description="Days at the end of the data interval held out as test."
    )
    pricing_schedule: str = Field(
        default="@weekly", description="When the pricing_training DAG retrains (cron)."
    )
    pricing_valid_weeks: int = Field(
        default=8, gt=0, description="Weeks before the test window the pricing model tunes on."
    )
    pricing_test_weeks: int = Field(
        default=8, gt=0, description="Weeks at the end of the data interval held out as test."
    )
    etl_block_mb: int = Field(
        default=16, gt=0, description="Megabytes of raw input validated per chunk; bounds memory."
    )

    @property
    def etl_block_bytes(self) -> int:
        return self.etl_block_mb << 20

    @property
    def sources_dir(self) -> Path:
        """Prepared copies of the built-in data sets, the replay's timelines."""
        return self.data_dir / "sources"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def curated_dir(self) -> Path:
        return self.data_dir / "curated"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def runs_dir(self) -> Path:
        """One JSON summary per ETL run."""
        return self.data_dir / "runs"

    @property
    def mlflow_dir(self) -> Path:
        """The local tracking store and artifacts (the embedded default)."""
        return self.data_dir / "mlflow"

    @property
    def tracking_uri(self) -> str:
        """Where MLflow runs and the registry live."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if self.profile == "production":
            raise ValueError(
                "the production profile needs AISLE_MLFLOW_TRACKING_URI "
                "(e.g. postgresql://postgres@127.0.0.1:5432/mlflow)"
            )
        return f"sqlite:///{(self.mlflow_dir / 'mlflow.db').resolve()}"

    @property
    def artifacts_uri(self) -> str:
        """Where new experiments keep artifacts when the tracking store is a database."""
        return (self.mlflow_dir / "artifacts").resolve().as_uri()

    @field_validator(
        "interactions_schedule",
        "sales_schedule",
        "features_sweep_schedule",
        "recommender_schedule",
        "pricing_schedule",
    )
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (e.g. @daily, '0 0 * * 4')")
        return value

    def schedule_for(self, flow: str) -> str:
        return {"interactions": self.interactions_schedule, "sales": self.sales_schedule}[flow]

    def source_for(self, table: str) -> str:
        """The configured source of an event table (`interactions` or `sales`)."""
        if table == "interactions":
            return self.interactions_source
        if table == "sales":
            return self.sales_source
        raise ValueError(f"no source setting for table {table!r}")

    def to_env(self) -> dict[str, str]:
        """These settings as AISLE_* variables, for processes that must see the same values."""
        env = {}
        for name, value in self.model_dump(mode="json").items():
            if value is None:
                continue
            key = f"AISLE_{name.upper()}"
            env[key] = json.dumps(value) if isinstance(value, dict | list) else str(value)
        return env


def get_settings(**overrides: object) -> Settings:
    """The current settings: environment first, then keyword overrides (from the CLI)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
