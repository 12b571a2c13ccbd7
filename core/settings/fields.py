"""The `Settings` model: every setting Aisle reads from the environment (prefix `AISLE_`, nested
delimiter `__`, an optional `.env` file), their validators, the production profile's defaults,
and the settings exported again to the environment of child processes.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .experiments import ExperimentPolicy
from .paths import PathsAndUrls
from .policies import (
    DataChecksPolicy,
    DriftPolicy,
    GatePolicy,
    PerformancePolicy,
    PromotionPolicy,
    QuotingPolicy,
    SparkEngine,
)
from .stream import EventStream

# Built-in sources; anything else in a source setting is a path to a file in the canonical schema.
BUILTIN_SOURCES = ("movielens", "orange_juice", "simulator")


class Settings(PathsAndUrls, BaseSettings):
    """Every setting of Aisle, from AISLE_* variables (the derived paths and URLs: PathsAndUrls)."""

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
    calendar_end: datetime | None = Field(
        default=None,
        description="The last moment the DAGs' calendars run to: no scheduled run is created for "
        "an interval after it (backfills and Asset events still run). For a replay of past "
        "data, the end of its timeline, so the wall clock adds no runs; `aisle demo` sets it.",
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
    column_map: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="A shop export's own column names, per table: canonical -> the export's "
        "column, or ':value' for a constant, e.g. AISLE_COLUMN_MAP__INTERACTIONS='{\"user_id\": "
        '"customer_id", "event_type": ":purchase"}\' (features.column_map). Built-in sources '
        "are canonical and never mapped.",
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
    postgres_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432",
        description="The production profile's PostgreSQL server (no database in the URL): "
        "Airflow's metadata DB, MLflow's store and Feast's registry each get a database on it "
        "(aisle_airflow, aisle_mlflow, aisle_feast). A password belongs in the URL from the "
        "environment, never in a file.",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379",
        description="The production profile's Redis: Celery's broker (db 1) and Feast's online "
        "store (db 0).",
    )
    celery_workers: int = Field(
        default=2, ge=1, description="Celery workers `aisle stack up` starts (production)."
    )
    airflow_port: int = Field(default=8080, description="Port of the Airflow API server and UI.")
    mlflow_port: int = Field(default=5000, description="Port of the MLflow tracking server / UI.")
    engine: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="The data stage's engine: DuckDB in this process (the embedded default) or "
        "Apache Spark (AISLE_SPARK__MASTER: local[*] or a cluster) for the feature tables, "
        "Feast's training-set joins (its Spark offline store) and materialisation (its Spark "
        "compute engine). Both run the same SQL and write the same rows.",
    )
    spark: SparkEngine = Field(default_factory=SparkEngine)
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
    experiments_schedule: str = Field(
        default="@daily",
        description="When the experiment_monitor DAG attributes outcomes and decides (a look).",
    )
    pricing_valid_weeks: int = Field(
        default=8, gt=0, description="Weeks before the test window the pricing model tunes on."
    )
    pricing_test_weeks: int = Field(
        default=8, gt=0, description="Weeks at the end of the data interval held out as test."
    )
    training_config: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per model, changes to its training configuration (the fields of "
        "training/<model>/model.py's config) for every run the DAGs and the CLI start; a run's "
        'own params win. E.g. AISLE_TRAINING_CONFIG=\'{"pricing": {"members": 2}}\' for a '
        "quicker, less certain ensemble.",
    )
    task_threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads the numeric libraries (torch, OpenMP, BLAS) of each process of "
        "the stack may use: its tasks run side by side, and threads beyond the cores spin "
        "against each other (an L-BFGS step took 2.3x longer with two threads than with one "
        "beside a busy second core). Unset: the cores divided by the four tasks Airflow runs "
        "at once (airflow.cfg parallelism), at least one. OMP_NUM_THREADS in the environment "
        "wins.",
    )
    serving_host: str = Field(
        default="127.0.0.1", description="Interface the gateway and the local slots listen on."
    )
    gateway_port: int = Field(default=8700, description="Port of the gateway (the shop's URL).")
    slot_port_base: int = Field(
        default=8710,
        description="Local slots listen on base+1..base+4: recommender blue, green; pricing "
        "blue, green.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for promote, rollback and status (AISLE_ADMIN_TOKEN). Unset: "
        "those are refused.",
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Keys the scoring endpoints accept in X-API-Key, e.g. "
        "AISLE_API_KEYS='[\"k1\"]'. Empty: scoring is open.",
    )
    serving_gpu: bool = Field(
        default=False, description="Serve on a GPU: slots ask for resources={'gpu': 1}."
    )
    recommender_search: Literal["auto", "exact", "ivf"] = Field(
        default="auto",
        description="How a large-catalogue recommender (factor form) searches: auto uses the "
        "checkpoint's faiss IVF index where it has one, exact scores every item.",
    )
    recommender_buy_again: str = Field(
        default="off",
        description="Which items the recommender may recommend again to a shopper who already "
        "has them in their history: off (never), all, or categories separated by commas (e.g. "
        "'dairy,produce'). Training, its evaluation and gate, and the performance check follow "
        "it; a model keeps the setting it was trained with (training/recommender/buy_again.py).",
    )
    max_request_bytes: int = Field(
        default=1_000_000, gt=0, description="Larger request bodies are refused with 413."
    )
    promotion: PromotionPolicy = Field(default_factory=PromotionPolicy)
    gate: GatePolicy = Field(default_factory=GatePolicy)
    drift: DriftPolicy = Field(default_factory=DriftPolicy)
    performance: PerformancePolicy = Field(default_factory=PerformancePolicy)
    data_checks: DataChecksPolicy = Field(default_factory=DataChecksPolicy)
    quoting: QuotingPolicy = Field(default_factory=QuotingPolicy)
    serving_backend: Literal["local", "kubernetes"] = Field(
        default="local",
        description="Where slots run: local processes (bentoml serve) or Kubernetes Deployments "
        "(docker/k8s/).",
    )
    kubernetes_namespace: str = Field(default="aisle", description="Namespace of the slots.")
    gateway_slots: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Slots the gateway knows from its start, for fixed deployments (compose, "
        'Kubernetes), e.g. {"recommender": {"blue": "http://recommender-blue:3000", ...}}; the '
        "first colour listed takes the traffic until a switch.",
    )
    events: EventStream = Field(default_factory=EventStream)
    experiments: ExperimentPolicy = Field(default_factory=ExperimentPolicy)
    etl_block_mb: int = Field(
        default=16, gt=0, description="Megabytes of raw input validated per chunk; bounds memory."
    )

    @model_validator(mode="after")
    def _production_defaults(self) -> Settings:
        """One setting switches everything: with profile=production, Feast's registry and
        online store and MLflow's tracking server follow from postgres_url and redis_url
        unless set one by one."""
        if self.profile == "production":
            if self.feast_registry_url is None:
                self.feast_registry_url = self.postgres_database("aisle_feast", "psycopg")
            if self.feast_redis is None:  # a stalled Redis fails a lookup fast (fallback)
                timeouts = "socket_timeout=1,socket_connect_timeout=1"
                self.feast_redis = f"{self.redis_netloc},db=0,{timeouts}"
            if self.mlflow_tracking_uri is None:
                self.mlflow_tracking_uri = self.mlflow_url
        return self

    @property
    def etl_block_bytes(self) -> int:
        return self.etl_block_mb << 20

    @field_validator("column_map")
    @classmethod
    def _mapped_tables_exist(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        from core.schemas import TABLES

        unknown = sorted(set(value) - set(TABLES))
        if unknown:  # a misspelt table would leave its export unmapped without a word
            raise ValueError(f"no table {', '.join(unknown)}; tables: {', '.join(TABLES)}")
        return value

    @field_validator(
        "interactions_schedule",
        "sales_schedule",
        "features_sweep_schedule",
        "recommender_schedule",
        "pricing_schedule",
        "experiments_schedule",
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

    def threads_per_task(self) -> int:
        return self.task_threads or max(1, (os.cpu_count() or 1) // TASKS_AT_ONCE)

    def to_env(self) -> dict[str, str]:
        """These settings as AISLE_* variables, for processes that must see the same values.
        Secrets are left out (they are exported nowhere, and logged never): a child process that
        needs them gets `secrets_env()` in its own environment."""
        env = {}
        for name, value in self.model_dump(mode="json", exclude=set(SECRET_FIELDS)).items():
            if value is None:
                continue
            key = f"AISLE_{name.upper()}"
            env[key] = json.dumps(value) if isinstance(value, dict | list) else str(value)
        return env

    def secrets_env(self) -> dict[str, str]:
        """The secrets as AISLE_* variables, for a child process's environment only."""
        env = {}
        if self.admin_token is not None:
            env["AISLE_ADMIN_TOKEN"] = self.admin_token.get_secret_value()
        if self.api_keys:
            env["AISLE_API_KEYS"] = json.dumps([k.get_secret_value() for k in self.api_keys])
        return env


SECRET_FIELDS = ("admin_token", "api_keys")
TASKS_AT_ONCE = 4  # airflow.cfg: [core] parallelism


def get_settings(**overrides: object) -> Settings:
    """The current settings: environment first, then keyword overrides (from the CLI)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
