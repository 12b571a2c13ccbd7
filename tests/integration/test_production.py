"""The production profile, for real: `aisle stack up` with AISLE_PROFILE=production starts
Airflow on PostgreSQL with the CeleryExecutor (two workers, Redis as broker), the MLflow server
on PostgreSQL, Feast's SQL registry on PostgreSQL and its online store in Redis, against the
CI host's services. The closed loop runs once on it (one interval per flow, the scheduler
alone), then each fault is injected into the running system:

* a Celery worker SIGKILLed mid-task: the task is retried on the other worker, the run
  succeeds, and the curated week holds each source row once;
* PostgreSQL restarted during a run: the run still succeeds;
* Redis stopped (SIGSTOP) while scoring: both endpoints answer 200 with `fallback: true`, no
  5xx, and answer normally again once it continues;
* the MLflow server down: a training run's tasks fail, retry, and succeed after it returns.

Each test leaves the services running (a `finally` restarts what it stopped)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from urllib.parse import quote

import httpx
import pandas as pd
import psutil
import pytest

from aisle import loop, stack
from core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WEEK = ("1992-09-10", "1992-09-17")  # history weeks of Dominick's the faults re-ingest
OTHER_WEEK = ("1992-09-03", "1992-09-10")


def _answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def production(
    prepared_settings: Settings, tmp_path_factory, free_port, quick_training, module_env
):
    """The loop, once, on a fresh production stack (fresh databases, emptied Redis dbs)."""
    if not os.environ.get("CI") and not all(_answers(port) for port in (5432, 6379)):
        # a developer's machine without the services; in CI (which starts them) never skipped
        pytest.skip("the production profile needs PostgreSQL (5432) and Redis (6379)")
    data_dir = tmp_path_factory.mktemp("production") / "data"
    data_dir.mkdir()
    (data_dir / "sources").symlink_to(prepared_settings.sources_dir.resolve())
    environment = {
        "AIRFLOW_HOME": str(data_dir / "airflow"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        # a task whose worker died is failed (and retried) after 30 s without a heartbeat
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        # MLflow's client gives up quickly, so Airflow's retries do the waiting
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    }
    for name, value in environment.items():  # put back after the module
        module_env.setenv(name, value)
    settings = prepared_settings.model_copy(
        update={
            "data_dir": data_dir,
            "profile": "production",
            "interactions_schedule": "@weekly",
            "training_config": quick_training,
            "airflow_port": free_port(),
            "mlflow_port": free_port(),
            "gateway_port": free_port(),
            "slot_port_base": free_port(span=5),
            "events": prepared_settings.events.model_copy(
                update={"broker_port": free_port(span=2), "consumer_port": free_port()}
            ),
            "feast_registry_url": None,
            "feast_redis": None,
            "mlflow_tracking_uri": None,
        }
    )
    settings = Settings(**settings.model_dump())  # derive the production URLs afresh
    stack.reset_production_state(settings)
    plans = loop.plan(settings, live_intervals=1)
    settings = loop.replay_settings(settings, plans)
    loop.bootstrap(settings, plans, on_step=lambda m: None)
    try:
        settings = stack.up(settings, on_step=lambda m: None)
        result = loop.run_live(settings, plans, timeout_s=1200)
        yield settings, loop.summary(settings, result)
    finally:
        stack.down(settings)


@pytest.fixture(scope="module")
def api(production):
    """Airflow's API on the production stack. The fault tests re-ingest history weeks; with the
    loop done, what those runs would set off downstream (features, drift, a pricing retrain)
    is paused, so each fault meets only the run it is about (the MLflow outage a training run
    of its own, not a cascade competing for the two cores)."""
    from aisle.airflow_api import AirflowApi

    api = AirflowApi(production[0])
    for dag_id in ("features", "drift_monitor", "pricing_training", "promote_model"):
        api.pause(dag_id, True)
    return api


def test_the_loop_runs_on_celery_postgres_and_redis(production, api):
    import psycopg
    import redis

    settings, done = production
    assert all("failed" not in counts for counts in done["runs"].values()), done["runs"]
    for model in loop.MODELS:
        assert done["champions"][model] is not None, done["champions"]
        assert any(p["model"] == model and p["step"] == "promoted" for p in done["promotions"])
    # every store is where the profile says: Airflow's runs, MLflow's registry and Feast's
    # registry in their PostgreSQL databases, the online features in Redis
    with psycopg.connect(settings.postgres_database("aisle_airflow")) as db:
        runs = db.execute("SELECT count(*) FROM dag_run WHERE state = 'success'").fetchone()[0]
        assert runs >= sum(c.get("success", 0) for c in done["runs"].values())
    with psycopg.connect(settings.postgres_database("aisle_mlflow")) as db:
        names = {r[0] for r in db.execute("SELECT name FROM registered_models")}
        assert names >= set(loop.MODELS)
    with psycopg.connect(settings.postgres_database("aisle_feast")) as db:
        assert db.execute("SELECT count(*) FROM feature_views").fetchone()[0] >= 6
    assert redis.Redis.from_url(settings.redis_url, db=0).dbsize() > 0
    assert settings.tracking_uri == settings.mlflow_url  # tasks went through the server
    # and the tasks ran on the Celery workers
    run = api.runs("pricing_training")[-1]
    queues = {t["queue"] for t in api.task_instances("pricing_training", _q(run["dag_run_id"]))}
    assert queues == {"default"}  # Celery's queue (the LocalExecutor has none in use)
    assert all(stack.running(settings, f"airflow-celery-worker-{n}") for n in (1, 2))


def _q(run_id: str) -> str:
    return quote(run_id, safe="")


def _trigger(api, dag_id: str, conf: dict | None = None, logical_date: str | None = None) -> str:
    body: dict = {"conf": conf or {}, "logical_date": logical_date}
    return api._call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]


def _wait_run(api, dag_id: str, run_id: str, timeout_s: float = 600) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = api._call("GET", f"/dags/{dag_id}/dagRuns/{_q(run_id)}")["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(3)
    raise AssertionError(f"{dag_id} {run_id} did not finish in {timeout_s} s")


def _task(api, dag_id: str, run_id: str, task_id: str) -> dict:
    return api._call("GET", f"/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances/{task_id}")


def _wait_task(
    api, dag_id, run_id, task_id, states: set[str], timeout_s: float = 300, poll_s: float = 1
) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ti = _task(api, dag_id, run_id, task_id)
        if ti["state"] in states:
            return ti
        time.sleep(poll_s)
    raise AssertionError(f"{dag_id}.{task_id} never reached {states}: {ti['state']}")


def test_a_worker_killed_mid_task_is_survived_without_duplicates(production, api):
    settings, _ = production
    run_id = _trigger(api, "ingest_sales", logical_date=f"{WEEK[1]}T00:00:00Z")
    workers = {n: stack.running(settings, f"airflow-celery-worker-{n}") for n in (1, 2)}
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline:
        # a week's ETL runs for a few seconds only (the workers preload its libraries): poll
        # fast, or the task is done before it is seen running
        ti = _wait_task(api, "ingest_sales", run_id, "etl_sales", {"running"}, poll_s=0.1)
        # the worker whose process tree holds the task's process dies with all of it
        victim = next(
            (n for n, pid in workers.items() if pid and ti["pid"] in _tree_pids(pid)), None
        )
    assert victim is not None, f"no worker runs etl_sales: {ti}"
    for process in [
        psutil.Process(workers[victim]),
        *psutil.Process(workers[victim]).children(recursive=True),
    ]:
        process.send_signal(signal.SIGKILL)
    try:
        assert _wait_run(api, "ingest_sales", run_id) == "success"
        assert _task(api, "ingest_sales", run_id, "etl_sales")["try_number"] >= 2
    finally:
        stack.up(settings, on_step=lambda m: None)  # the dead worker back
    from features.etl import summary_path
    from features.storage import Interval

    summary = json.loads(
        summary_path(settings, "orange_juice", "sales", Interval.parse(*WEEK)).read_text()
    )
    source = pd.read_parquet(settings.sources_dir / "orange_juice" / "sales.parquet")
    in_week = source.week_start == pd.Timestamp(WEEK[0])
    assert summary["reconciles"] and summary["curated"] == int(in_week.sum())
    curated = pd.read_parquet(settings.curated_dir / "orange_juice" / "sales" / f"date={WEEK[0]}")
    assert len(curated) == int(in_week.sum())
    assert not curated.duplicated(["store_id", "item_id", "week_start"]).any()


def _tree_pids(pid: int) -> set[int]:
    root = psutil.Process(pid)
    return {root.pid, *(p.pid for p in root.children(recursive=True))}


def test_a_postgres_restart_during_a_run_is_survived(production, api):
    run_id = _trigger(api, "ingest_sales", logical_date=f"{OTHER_WEEK[1]}T00:00:00Z")
    _wait_task(api, "ingest_sales", run_id, "land_sales", {"running", "success"})
    cluster = os.listdir("/etc/postgresql")[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"],
        check=True,
        timeout=120,
    )
    assert _wait_run(api, "ingest_sales", run_id) == "success"


def test_redis_stopped_while_scoring_falls_back_without_5xx(production):
    settings, _ = production
    gateway = settings.gateway_url
    recommend = {"user_id": "1", "k": 5}
    source = pd.read_parquet(settings.sources_dir / "orange_juice" / "sales.parquet").iloc[-1]
    price = {"item_id": str(source.item_id), "store_id": str(source.store_id)}
    assert httpx.post(f"{gateway}/price", json=price, timeout=10).status_code == 200  # seen
    redis_pid = int(
        subprocess.run(["redis-cli", "info", "server"], capture_output=True, text=True)
        .stdout.split("process_id:")[1]
        .split()[0]
    )
    os.kill(redis_pid, signal.SIGSTOP)
    try:
        during = [
            httpx.post(f"{gateway}/recommend", json=recommend, timeout=30),
            httpx.post(f"{gateway}/price", json=price, timeout=30),
        ]
    finally:
        os.kill(redis_pid, signal.SIGCONT)
    for answer in during:
        assert answer.status_code == 200, answer.text
        assert answer.json()["fallback"] is True, answer.json()
    after = httpx.post(f"{gateway}/price", json=price, timeout=10)
    assert after.status_code == 200 and after.json()["fallback"] is False
    again = httpx.post(f"{gateway}/recommend", json=recommend, timeout=10).json()
    assert "online" not in (again.get("fallback_reason") or "")


def test_mlflow_down_training_retries_and_succeeds_after_it_returns(production, api):
    settings, done = production
    stack.stop(settings, "mlflow")  # an outage the supervisor cannot heal
    end = done["champions"]["recommender"]["data_interval_end"][:10]
    run_id = _trigger(api, "recommender_training", conf={"end": end})
    try:  # the first task that needs the tracking server fails, and waits for its retry
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            tasks = api.task_instances("recommender_training", _q(run_id))
            waiting = [t for t in tasks if t["state"] == "up_for_retry"]
            if waiting:
                break
            assert all(t["state"] != "failed" for t in tasks), tasks
            time.sleep(2)
        assert waiting, "no task met the missing tracking server"
    finally:
        stack.up(settings, on_step=lambda m: None)  # MLflow back
    assert _wait_run(api, "recommender_training", run_id, timeout_s=900) == "success"
    retried = _task(api, "recommender_training", run_id, waiting[0]["task_id"])
    assert retried["try_number"] >= 2 and retried["state"] == "success"
