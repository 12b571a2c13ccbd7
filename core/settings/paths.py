"""Where things are, derived from a few settings: the data folder's zones and stores, the URLs of
the servers the stack runs, and the production profile's databases on PostgreSQL and Redis.

A mixin of `Settings`: it reads `data_dir`, `profile`, `serving_host`, the ports,
`postgres_url`, `redis_url` and `mlflow_tracking_uri`, and adds no setting of its own.
"""

from __future__ import annotations

from pathlib import Path


class PathsAndUrls:
    """The paths and URLs that follow from the settings (properties, never set by hand)."""

    def postgres_database(self, database: str, driver: str | None = None) -> str:
        """A database on the production profile's PostgreSQL, as an SQLAlchemy URL."""
        scheme, rest = self.postgres_url.rstrip("/").split("://", 1)
        scheme = scheme.split("+")[0] + (f"+{driver}" if driver else "")
        return f"{scheme}://{rest}/{database}"

    @property
    def redis_netloc(self) -> str:
        """host:port of redis_url (Feast's connection-string form)."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.redis_url)
        netloc = f"{parts.hostname}:{parts.port or 6379}"
        return netloc + (f",password={parts.password}" if parts.password else "")

    @property
    def mlflow_url(self) -> str:
        """The MLflow tracking server (and UI) `aisle stack up` runs."""
        return f"http://{self.serving_host}:{self.mlflow_port}"

    @property
    def airflow_url(self) -> str:
        return f"http://{self.serving_host}:{self.airflow_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.serving_host}:{self.gateway_port}"

    @property
    def stack_dir(self) -> Path:
        """The stack's process ids and logs (`aisle stack up`)."""
        return self.data_dir / "stack"

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
    def serving_dir(self) -> Path:
        """The local cluster's state, slot logs and the promotion audit log."""
        return self.data_dir / "serving"

    @property
    def events_dir(self) -> Path:
        """The event stream's own state: the stack's NATS store, the online store's backlog."""
        return self.data_dir / "events"

    @property
    def answers_dir(self) -> Path:
        """The answer log: every answer the models gave, one partition per day."""
        return self.data_dir / "answers"

    @property
    def outcomes_dir(self) -> Path:
        """What each answer earned (monitoring.outcomes), one partition per model and day."""
        return self.data_dir / "outcomes"

    @property
    def broker_url(self) -> str:
        """The event stream's broker: AISLE_EVENTS__URL, else the stack's own NATS server."""
        if self.events.url:
            return self.events.url
        if self.events.broker != "nats":
            raise ValueError(
                f"AISLE_EVENTS__BROKER={self.events.broker} needs AISLE_EVENTS__URL; only NATS "
                "runs inside the stack"
            )
        return f"nats://{self.serving_host}:{self.events.broker_port}"

    @property
    def runs_own_broker(self) -> bool:
        """Whether the stack starts the broker itself (no AISLE_EVENTS__URL given)."""
        return self.events.url is None and self.events.broker == "nats"

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
