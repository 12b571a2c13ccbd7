"""The production profile's stores on the host's servers: its databases on PostgreSQL, created
by `up` when missing, and a clean slate (databases dropped, Redis emptied) for tests and
benchmarks."""

from __future__ import annotations

from core.settings import Settings

PRODUCTION_DATABASES = ("aisle_airflow", "aisle_mlflow", "aisle_feast")
REDIS_DATABASES = (0, 1)  # Feast's online store, Celery's broker


def ensure_databases(settings: Settings) -> None:
    """The production profile's databases on the PostgreSQL server (created when missing)."""
    if settings.profile != "production":
        return
    import psycopg

    server = settings.postgres_database("postgres")
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as connection:
        present = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
        for name in PRODUCTION_DATABASES:
            if name not in present:
                connection.execute(f'CREATE DATABASE "{name}"')


def reset_production_state(settings: Settings) -> None:
    """Drop the production profile's databases and empty its Redis databases: a clean slate for
    a test or a benchmark. Never called by `up`; nothing else calls it either."""
    import psycopg
    import redis

    with psycopg.connect(settings.postgres_database("postgres"), autocommit=True) as connection:
        for name in PRODUCTION_DATABASES:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for db in REDIS_DATABASES:
        redis.Redis.from_url(settings.redis_url, db=db).flushdb()
