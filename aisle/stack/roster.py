"""The roster: which components each profile runs, one `Component` per process, with its command,
the URL that answers when it is up, and the environment it gets beside the stack's."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings

SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class Component:
    name: str
    command: list[str]
    health_url: str | None = None  # answers 200 when the component is up
    env: dict[str, str] | None = None  # beside the stack's environment


def components(settings: Settings) -> list[Component]:
    bin_dir = Path(sys.executable).parent
    airflow = str(bin_dir / "airflow")
    # where tasks fork from (the LocalExecutor in the scheduler, Celery workers): preloaded
    task_parent = [sys.executable, "-m", "aisle.stack.preload", "airflow"]
    local = settings.profile != "production"
    found = [
        Component(
            "airflow-api-server",
            [airflow, "api-server"],
            airflow_health_url(settings),
        ),
        Component("airflow-scheduler", [*(task_parent if local else [airflow]), "scheduler"]),
        Component("airflow-dag-processor", [airflow, "dag-processor"]),
        Component("airflow-triggerer", [airflow, "triggerer"]),
    ]
    if settings.profile == "production":
        log_port = int(os.environ.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "8793"))
        for n in range(1, settings.celery_workers + 1):
            found.append(
                Component(
                    f"airflow-celery-worker-{n}",
                    [*task_parent, "celery", "worker", "--celery-hostname", f"aisle-worker-{n}@%h"],
                    # each worker serves its task logs on a port of its own
                    env={"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port + 10 * n)},
                )
            )
    found.append(
        Component(
            "mlflow",
            [
                str(bin_dir / "mlflow"),
                "server",
                "--host",
                settings.serving_host,
                "--port",
                str(settings.mlflow_port),
                "--backend-store-uri",
                mlflow_backend_store(settings),
                "--artifacts-destination",
                str(settings.mlflow_dir.resolve() / "artifacts"),
                "--workers",
                "1",
            ],
            f"{settings.mlflow_url}/health",
            # MLflow 3's GenAI job runner (a dozen huey consumers, ~275 MB and an MLflow import
            # each) serves nothing Aisle uses
            env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
    )
    found += event_stream(settings)
    # last, so `down` stops it first: it restarts any other component that dies (supervisor.py)
    found.append(Component(SUPERVISOR, [sys.executable, "-m", "aisle.stack", "supervise"]))
    return found


def airflow_health_url(settings: Settings) -> str:
    """Airflow's health report: the API server answers it, and says how the rest is."""
    return f"{settings.airflow_url}/api/v2/monitor/health"


def mlflow_backend_store(settings: Settings) -> str:
    """What the MLflow server stores runs and the registry in: PostgreSQL in production, the
    local SQLite store otherwise (tasks write it directly; the server is its UI)."""
    if settings.profile == "production":
        return settings.postgres_database("aisle_mlflow", "psycopg")
    return f"sqlite:///{(settings.mlflow_dir / 'mlflow.db').resolve()}"


def event_stream(settings: Settings) -> list[Component]:
    """The event stream: its own NATS server (JetStream, stored under <data_dir>/events/broker)
    unless AISLE_EVENTS__URL names a broker elsewhere, and the consumer (features.stream)."""
    found = []
    host = settings.serving_host
    if settings.runs_own_broker:
        port = settings.events.broker_port
        store = (settings.events_dir / "broker").resolve()
        nats = [str(Path(sys.executable).parent / "nats-server"), "-a", host, "-p", str(port)]
        monitor = ["-m", str(port + 1)]  # its /healthz
        found.append(
            Component(
                "events-broker",
                [*nats, *monitor, "-js", "-sd", str(store)],
                f"http://{host}:{port + 1}/healthz",
            )
        )
    found.append(
        Component(
            "events-consumer",
            [sys.executable, "-m", "features.stream"],
            f"http://{host}:{settings.events.consumer_port}/healthz",
        )
    )
    return found
