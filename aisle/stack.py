"""The whole system as local processes: `aisle stack up|down|status`.

One command starts what the profile needs, each process in its own session with its pid and log
under `data/stack/`:

    airflow-api-server, airflow-scheduler, airflow-dag-processor, airflow-triggerer
    airflow-celery-worker-1..N        production only (CeleryExecutor, Redis as broker)
    mlflow                            the tracking server and UI (on PostgreSQL in production;
                                      on the local SQLite store otherwise, for its UI)
    supervisor                        restarts any of the above that dies
    gateway, slots                    the serving cluster: each model's champion live

On the local profile Airflow runs on SQLite with the LocalExecutor (airflow.cfg); on the
production profile on PostgreSQL with Celery workers (`airflow_env.production_env`), against
the host's PostgreSQL and Redis (`AISLE_POSTGRES_URL`, `AISLE_REDIS_URL`). `up` is idempotent:
a process that is already running is kept.

Secrets: Airflow's keys and the UI's `admin` password are generated into AIRFLOW_HOME (mode
0600; the password before Airflow would generate and print one); the serving cluster's admin
token is AISLE_ADMIN_TOKEN, or generated once into `data/stack/admin-token` (0600) when unset.
None is ever printed or logged.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from core.settings import Settings

from . import airflow_env

ADMIN_TOKEN_FILE = "admin-token"


class StackError(RuntimeError):
    """A process of the stack did not start or did not become healthy; the message names its log."""


@dataclass(frozen=True)
class Component:
    name: str
    command: list[str]
    health_url: str | None = None  # answers 200 when the component is up
    env: dict[str, str] | None = None  # beside the stack's environment


def components(settings: Settings) -> list[Component]:
    bin_dir = Path(sys.executable).parent
    airflow = str(bin_dir / "airflow")
    found = [
        Component(
            "airflow-api-server",
            [airflow, "api-server"],
            f"{settings.airflow_url}/api/v2/monitor/health",
        ),
        Component("airflow-scheduler", [airflow, "scheduler"]),
        Component("airflow-dag-processor", [airflow, "dag-processor"]),
        Component("airflow-triggerer", [airflow, "triggerer"]),
    ]
    if settings.profile == "production":
        log_port = int(os.environ.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "8793"))
        for n in range(1, settings.celery_workers + 1):
            found.append(
                Component(
                    f"airflow-celery-worker-{n}",
                    [airflow, "celery", "worker", "--celery-hostname", f"aisle-worker-{n}@%h"],
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
        )
    )
    # last, so `down` stops it first: it restarts any other component that dies
    found.append(Component(SUPERVISOR, [sys.executable, "-m", "aisle.stack", "supervise"]))
    return found


def mlflow_backend_store(settings: Settings) -> str:
    """What the MLflow server stores runs and the registry in: PostgreSQL in production, the
    local SQLite store otherwise (tasks write it directly; the server is its UI)."""
    if settings.profile == "production":
        return settings.postgres_database("aisle_mlflow", "psycopg")
    return f"sqlite:///{(settings.mlflow_dir / 'mlflow.db').resolve()}"


SUPERVISOR = "supervisor"


def supervise(settings: Settings, every_s: float = 5.0) -> None:
    """Restart any component that died (as systemd's or Kubernetes' restart policy would): an
    Airflow scheduler exits when its database goes away (a PostgreSQL restart), a Celery worker
    may be killed; both come back, and their runs go on. Runs until SIGTERM."""
    import logging
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    log = logging.getLogger("aisle.stack.supervise")
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    _, env = stack_env(settings)
    restarts: dict[str, float] = {}
    while not stopping:
        for component in components(settings):
            if component.name == SUPERVISOR or running(settings, component.name):
                continue
            if not pid_file(settings, component.name).exists():
                continue  # stopped on purpose (`down`), not died
            if time.monotonic() - restarts.get(component.name, -60.0) < 10:
                continue  # give a restart time before the next
            log.warning("%s is not running: restarting it", component.name)
            start(settings, component, env)
            restarts[component.name] = time.monotonic()
        time.sleep(every_s)


def start(settings: Settings, component: Component, env: dict[str, str]) -> subprocess.Popen:
    with log_file(settings, component.name).open("ab") as log:
        process = subprocess.Popen(
            component.command,
            env={**env, **(component.env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=airflow_env.PROJECT_DIR,
            start_new_session=True,
        )
    pid_file(settings, component.name).write_text(str(process.pid))
    return process


def admin_token(settings: Settings) -> str:
    """AISLE_ADMIN_TOKEN, or one generated once for this data folder (kept 0600)."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    path = settings.stack_dir / ADMIN_TOKEN_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def ensure_ui_password(settings: Settings) -> Path:
    """The Airflow UI's `admin` password, generated here (file mode 0600) before the API server
    starts: Airflow's simple auth manager prints a password it generates itself to its log."""
    path = airflow_password_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(json.dumps({"admin": secrets.token_urlsafe(16)}) + "\n")
    return path


def stack_env(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """The settings with the admin token in them, and the environment every component gets."""
    from pydantic import SecretStr

    settings = settings.model_copy(update={"admin_token": SecretStr(admin_token(settings))})
    airflow_env.configure(settings)
    env = {**os.environ, **settings.secrets_env(), **thread_env(settings), "PYTHONUNBUFFERED": "1"}
    return settings, env


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(settings: Settings) -> dict[str, str]:
    """How many threads each component's numeric libraries start (torch reads OMP_NUM_THREADS):
    `settings.threads_per_task()`, unless the environment already says."""
    threads = str(settings.threads_per_task())
    return {name: os.environ.get(name, threads) for name in THREAD_VARIABLES}


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


PRODUCTION_DATABASES = ("aisle_airflow", "aisle_mlflow", "aisle_feast")
REDIS_DATABASES = (0, 1)  # Feast's online store, Celery's broker


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


def pid_file(settings: Settings, name: str) -> Path:
    return settings.stack_dir / f"{name}.pid"


def log_file(settings: Settings, name: str) -> Path:
    return settings.stack_dir / "logs" / f"{name}.log"


def running(settings: Settings, name: str) -> int | None:
    """The component's pid when it runs."""
    from core.processes import alive

    path = pid_file(settings, name)
    if path.exists():
        pid = int(path.read_text())
        if alive(pid):
            return pid
    return None


def up(
    settings: Settings, on_step: Callable[[str], None] = print, timeout_s: float = 240.0
) -> Settings:
    """Start every component the profile needs (keeping those that run); wait until healthy.
    Returns the settings the stack runs with (the admin token included)."""
    from serving.cluster import up as serving_up

    settings, env = stack_env(settings)
    ensure_databases(settings)
    airflow_env.migrate_db(settings)
    ensure_ui_password(settings)
    (settings.stack_dir / "logs").mkdir(parents=True, exist_ok=True)
    started = []
    for component in components(settings):
        if running(settings, component.name):
            continue
        on_step(f"starting {component.name}")
        started.append((component, start(settings, component, env)))
    deadline = time.monotonic() + timeout_s
    for component, process in started:
        wait_healthy(settings, component, process, deadline)
    wait_scheduler(settings, deadline)
    on_step(f"the serving cluster: gateway on {settings.gateway_url}, champions live")
    serving_up(settings, on_step=on_step)
    return settings


def wait_healthy(settings: Settings, component: Component, process, deadline: float) -> None:
    while component.health_url:
        if process.poll() is not None:
            raise StackError(f"{component.name} exited; see {log_file(settings, component.name)}")
        try:
            if httpx.get(component.health_url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise StackError(
                f"{component.name} did not answer on {component.health_url}; "
                f"see {log_file(settings, component.name)}"
            )
        time.sleep(1)


def wait_scheduler(settings: Settings, deadline: float) -> None:
    """Until Airflow's health endpoint reports the scheduler and DAG processor healthy."""
    url = f"{settings.airflow_url}/api/v2/monitor/health"
    report = None
    while time.monotonic() < deadline:
        try:
            report = httpx.get(url, timeout=2).json()
            if all(
                report.get(part, {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor")
            ):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    raise StackError(f"Airflow is not healthy: {report}; see {settings.stack_dir / 'logs'}")


def down(settings: Settings) -> list[str]:
    """Stop every component, slots included; returns the names stopped."""
    from concurrent.futures import ThreadPoolExecutor

    from serving.cluster import down as serving_down

    settings, _ = stack_env(settings)
    names = [c.name for c in components(settings)]
    stopped = [name for name in reversed(names) if running(settings, name)]
    stop(settings, SUPERVISOR)  # first: it would restart the others
    # each drains on its own (up to its grace period): side by side, not one after another
    rest = [name for name in names if name != SUPERVISOR]
    with ThreadPoolExecutor(len(rest) + 1) as pool:
        waits = [pool.submit(stop, settings, name) for name in rest]
        waits.append(pool.submit(serving_down, settings))
        for wait in waits:
            wait.result()
    return stopped


def stop(settings: Settings, name: str) -> None:
    """Stop one component on purpose: the supervisor leaves it down until the next `up`."""
    from core.processes import terminate

    pid = running(settings, name)
    pid_file(settings, name).unlink(missing_ok=True)
    if pid:
        terminate(pid, grace_s=20)


def status(settings: Settings) -> dict[str, int | None]:
    """Each component's pid, or None when it is not running."""
    return {c.name: running(settings, c.name) for c in components(settings)}


def airflow_password_file(settings: Settings) -> Path:
    """Where the simple auth manager keeps the generated password of the UI's `admin` user."""
    return airflow_env.airflow_home(settings) / "simple_auth_manager_passwords.json.generated"


if __name__ == "__main__":  # `python -m aisle.stack supervise`, started by `up`
    from core.settings import get_settings

    if sys.argv[1:] != ["supervise"]:
        raise SystemExit("usage: python -m aisle.stack supervise")
    supervise(get_settings())
