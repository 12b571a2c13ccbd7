"""The environment Airflow runs in for Aisle: its home, its config file, the project's DAGs.

`environment(settings)` computes it (values already in the environment win, so a deployment can
point Airflow elsewhere); an Airflow command run as a child process gets `subprocess_env`.
Airflow run in this process (a DagBag, `dag.test`) reads its configuration and its tasks'
settings from `os.environ`: `configured(settings)` sets them for a block and puts back what was
there; only a process's entry point (a CLI command, the test session) calls `configure`, which
sets them for good.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.files import create_private_file
from core.processes import child_environment
from core.settings import Settings

PROJECT_DIR = Path(__file__).resolve().parents[1]


def airflow_home(settings: Settings) -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or settings.data_dir.resolve() / "airflow")


SECRETS_FILE = "aisle-secrets.json"


def _secrets(home: Path) -> dict[str, str]:
    """Airflow's keys for this AIRFLOW_HOME, generated once and kept there (mode 0600).

    Every Airflow process must share them: a scheduler and an API server with different JWT
    secrets reject each other's task tokens. The environment wins where it sets one.
    """
    path = home / SECRETS_FILE
    if path.exists():
        return json.loads(path.read_text())
    from cryptography.fernet import Fernet

    keys = {
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
    }
    create_private_file(path, json.dumps(keys))
    return keys


def environment(settings: Settings) -> dict[str, str]:
    """Airflow's home, config and keys, the project's folder, the settings and their ports.

    DAG files and tasks read their settings from the environment, so a DAG parsed or run with
    these variables sees exactly `settings`. The production executor's stores and the keys keep
    the values the environment already gives them. Reads `os.environ`, never writes it.
    """
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    values = {
        **settings.to_env(),
        "AISLE_DATA_DIR": str(settings.data_dir.resolve()),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": os.environ.get("AIRFLOW_CONFIG") or str(PROJECT_DIR / "airflow.cfg"),
        "AISLE_PROJECT_DIR": os.environ.get("AISLE_PROJECT_DIR") or str(PROJECT_DIR),
    }
    values.update(api_env(settings))  # the settings' ports, so every process agrees
    for name, value in {**production_env(settings), **_secrets(home)}.items():
        values[name] = os.environ.get(name, value)
    return values


def subprocess_env(settings: Settings) -> dict[str, str]:
    """The whole environment of an Airflow command run as a child process: this process's,
    `environment(settings)` over it, and this interpreter's scripts first on PATH (`airflow
    standalone` starts its components as `airflow`, by name: they must be this installation's)."""
    env = child_environment(environment(settings))
    scripts = str(Path(sys.executable).parent)
    if scripts not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    return env


def configure(settings: Settings) -> dict[str, str]:
    """Export `environment(settings)` into this process for good and return it: for a process's
    entry point only (a CLI command that runs Airflow here, the test session), before Airflow is
    imported (it reads its home and config file at import). PATH is left alone."""
    values = environment(settings)
    os.environ.update(values)
    return values


@contextmanager
def configured(settings: Settings) -> Iterator[dict[str, str]]:
    """`environment(settings)` in this process for the block (Airflow run here, a DagBag or
    `dag.test`, and its tasks read them), then the environment as it was."""
    values = environment(settings)
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def api_env(settings: Settings) -> dict[str, str]:
    """Where the API server listens, and where tasks reach it (Airflow 3's execution API)."""
    url = settings.airflow_url
    return {
        "AIRFLOW__API__HOST": settings.serving_host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
    }


def production_env(settings: Settings) -> dict[str, str]:
    """The production profile's Airflow: CeleryExecutor, Redis as broker, PostgreSQL as metadata
    DB and result backend. Empty on the local profile (airflow.cfg's SQLite and LocalExecutor)."""
    if settings.profile != "production":
        return {}
    database = settings.postgres_database("aisle_airflow", "psycopg")
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        # psycopg 3 drives both; Airflow's default async driver (asyncpg) is not installed
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database,
        "AIRFLOW__CELERY__BROKER_URL": f"{settings.redis_url.rstrip('/')}/1",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    }


def migrate_db(settings: Settings) -> None:
    """Create or upgrade Airflow's metadata database (idempotent), in a child process."""
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run(
        [str(airflow), "db", "migrate"],
        capture_output=True,
        text=True,
        env=subprocess_env(settings),
    )
    if result.returncode != 0:
        raise RuntimeError(f"`airflow db migrate` failed:\n{result.stderr[-2000:]}")
