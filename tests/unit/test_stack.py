"""`aisle stack`: what each profile starts and with which stores (aisle.stack, aisle.airflow_env);
the processes themselves run in tests/integration/test_loop.py and test_production.py."""

from __future__ import annotations

import stat
import sys

from aisle import airflow_env, stack
from core.settings import get_settings


def test_one_setting_switches_every_store_to_postgres_and_redis(tmp_path):
    servers = {"postgres_url": "postgresql://aisle@db:5432", "redis_url": "redis://cache:6380"}
    settings = get_settings(data_dir=tmp_path, profile="production", **servers)
    assert settings.feast_registry_url == "postgresql+psycopg://aisle@db:5432/aisle_feast"
    assert settings.feast_redis.startswith("cache:6380,db=0,socket_timeout=")
    assert settings.tracking_uri == "http://127.0.0.1:5000"  # the MLflow server the stack runs
    assert stack.mlflow_backend_store(settings) == "postgresql+psycopg://aisle@db:5432/aisle_mlflow"
    env = airflow_env.production_env(settings)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@db:5432/aisle_airflow")
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://cache:6380/1"
    # an explicit setting still wins over the derived one
    explicit = get_settings(data_dir=tmp_path, profile="production", feast_redis="r:1")
    assert explicit.feast_redis == "r:1"


def test_the_local_profile_keeps_sqlite_and_starts_no_workers(tmp_path):
    settings = get_settings(data_dir=tmp_path)
    assert airflow_env.production_env(settings) == {}
    assert settings.tracking_uri.startswith("sqlite:///")
    names = [c.name for c in stack.components(settings)]
    assert names == ["airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
                     "airflow-triggerer", "mlflow", "events-broker", "events-consumer",
                     "supervisor"]  # fmt: skip


def test_tasks_fork_from_processes_that_imported_their_libraries(tmp_path):
    """The processes Airflow forks tasks from start through aisle.stack.preload (the loop tests
    run them for real); the others start as plain Airflow commands."""
    from aisle.stack import preload

    preloaded = [sys.executable, "-m", "aisle.stack.preload", "airflow"]
    local = {c.name: c.command for c in stack.components(get_settings(data_dir=tmp_path))}
    assert local["airflow-scheduler"] == [*preloaded, "scheduler"]  # the LocalExecutor's parent
    assert local["airflow-api-server"][0].endswith("/airflow")
    production = get_settings(data_dir=tmp_path, profile="production")
    commands = {c.name: c.command for c in stack.components(production)}
    assert commands["airflow-scheduler"][0].endswith("/airflow")  # Celery runs the tasks
    worker = commands["airflow-celery-worker-1"]
    assert worker[: len(preloaded) + 2] == [*preloaded, "celery", "worker"]
    assert set(preload.TASK_LIBRARIES) >= {"feast", "evidently", "mlflow", "torch"}
    assert preload.main(["scheduler"]) == 2  # not an Airflow command: the usage, nothing run


def test_production_workers_serve_their_logs_on_ports_of_their_own(tmp_path):
    settings = get_settings(data_dir=tmp_path, profile="production", celery_workers=3)
    workers = [c for c in stack.components(settings) if "celery-worker" in c.name]
    ports = {c.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] for c in workers}
    assert len(workers) == 3 and len(ports) == 3


def test_the_admin_token_is_generated_once_and_private(tmp_path):
    settings = get_settings(data_dir=tmp_path)
    token = stack.admin_token(settings)
    path = settings.stack_dir / stack.ADMIN_TOKEN_FILE
    assert len(token) >= 40 and stack.admin_token(settings) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    given = get_settings(data_dir=tmp_path, admin_token="from-the-environment")
    assert stack.admin_token(given) == "from-the-environment"


def test_each_component_starts_its_numeric_libraries_with_a_share_of_the_cores(
    tmp_path, monkeypatch
):
    for name in stack.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    settings = get_settings(data_dir=tmp_path)
    assert settings.threads_per_task() == 1  # two cores, four tasks at once
    monkeypatch.setattr("os.cpu_count", lambda: 32)
    assert settings.threads_per_task() == 8
    assert set(stack.thread_env(settings).values()) == {"8"}
    chosen = get_settings(data_dir=tmp_path, task_threads=3)
    assert stack.thread_env(chosen)["OMP_NUM_THREADS"] == "3"
    _, env = stack.stack_env(chosen)
    assert env["OMP_NUM_THREADS"] == "3"  # what every component is started with
    monkeypatch.setenv("OMP_NUM_THREADS", "5")  # an operator's own choice wins
    assert stack.thread_env(chosen)["OMP_NUM_THREADS"] == "5"
