"""Airflow's own backfill, run by the scheduler of `airflow standalone`, walks the orange juice
weeks through the ingest DAG: the same DAG the replay and the tests run, under real Airflow. The
scheduler then triggers the features DAG from the ingest's Asset events, and it materialises
every week."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from aisle import airflow_env
from features import online
from features.etl import summary_path
from features.storage import Interval

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WEEKS = ["1990-06-14", "1990-06-21", "1990-06-28", "1990-07-05"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def standalone(prepared_copy, tmp_path):
    """`airflow standalone` on free ports with its own home; stopped (whole group) afterwards."""
    os.environ["AIRFLOW_HOME"] = str(tmp_path / "airflow")  # restored after the test
    port = _free_port()
    env = {
        **os.environ,
        **airflow_env.configure(prepared_copy),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AISLE_FEATURES_SWEEP_SCHEDULE": "* * * * *",
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    log = (tmp_path / "standalone.log").open("w")
    process = subprocess.Popen(
        [airflow, "standalone"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2)
                if health.status_code == 200 and health.json()["scheduler"]["status"] == "healthy":
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "standalone.log").read_text()[-3000:]
            time.sleep(2)
        else:
            pytest.fail("airflow standalone was not healthy within 180 s")
        yield env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_airflow_backfill_walks_the_weeks(prepared_copy, standalone):
    airflow = str(Path(sys.executable).parent / "airflow")
    command = [
        airflow,
        "backfill",
        "create",
        "--dag-id",
        "ingest_sales",
        "--from-date",
        WEEKS[0],
        "--to-date",
        WEEKS[-1],
    ]
    # SQLite allows one writer: under load the CLI can meet the scheduler's write lock. The
    # creation is one transaction, so a locked attempt leaves nothing behind and is retried.
    for _ in range(10):
        created = subprocess.run(
            command, env=standalone, capture_output=True, text=True, timeout=120
        )
        if created.returncode == 0 or "database is locked" not in created.stderr:
            break
        time.sleep(3)
    assert created.returncode == 0, created.stderr[-3000:]

    intervals = [Interval.parse(w, pd.Timestamp(w) + pd.Timedelta(days=7)) for w in WEEKS]
    paths = [summary_path(prepared_copy, "orange_juice", "sales", i) for i in intervals]
    deadline = time.monotonic() + 300
    while not all(p.exists() for p in paths) and time.monotonic() < deadline:
        time.sleep(3)
    assert all(p.exists() for p in paths), "the backfill did not finish within 300 s"

    sales = pd.read_parquet(prepared_copy.sources_dir / "orange_juice" / "sales.parquet")
    for interval, path in zip(intervals, paths, strict=True):
        summary = json.loads(path.read_text())
        in_week = sales["week_start"].between(
            interval.start.replace(tzinfo=None),
            interval.end.replace(tzinfo=None),
            inclusive="left",
        )
        assert summary["curated"] == int(in_week.sum()) > 0
        assert summary["reconciles"]

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        backfilled = _run_states(airflow, standalone, prefix="backfill__")
        if len(backfilled) == len(WEEKS) and set(backfilled.values()) <= {"success", "failed"}:
            break
        time.sleep(3)
    assert backfilled == {f"backfill__{iv.end.isoformat()}": "success" for iv in intervals}

    # The features DAG, scheduled on the Asset the ETL task updates, processes every week (its
    # minute sweep here picks up events Airflow drops at max_active_runs, apache/airflow#56050).
    tables = prepared_copy.data_dir / "features" / "orange_juice" / "item_price"
    expected = [tables / f"date={w}" / "part-0.parquet" for w in WEEKS]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        runs = _run_states(airflow, standalone, prefix="", dag_id="features")
        settled = runs and set(runs.values()) <= {"success", "failed"}
        if settled and all(p.exists() for p in expected):
            break
        time.sleep(3)
    assert all(p.exists() for p in expected), runs
    assert "failed" not in runs.values(), runs
    assert any(run_id.startswith("asset_triggered__") for run_id in runs), runs
    last = pd.read_parquet(expected[-1]).iloc[0]
    os.environ.update(standalone)  # the store reads its paths from the same environment
    found = online.online_features(
        prepared_copy, "item_price_fv", [{"item_id": last.item_id, "store_id": last.store_id}]
    )
    assert found.row(0)["price"] == last.price


def _run_states(
    airflow: str, env: dict, prefix: str, dag_id: str = "ingest_sales"
) -> dict[str, str]:
    listed = subprocess.run(
        [airflow, "dags", "list-runs", dag_id, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = next(
        (json.loads(line) for line in listed.stdout.splitlines() if line.startswith("[")), []
    )
    return {r["run_id"]: r["state"] for r in rows if r["run_id"].startswith(prefix)}
