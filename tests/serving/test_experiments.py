"""An online experiment on the running cluster (tests/serving/conftest.py), through the CLI and
the `experiment_monitor` DAG run by Airflow: `aisle experiment start` deploys the challenger to
the idle colour and the gateway splits shoppers between the colours, the answer log records each
answer's arm, the DAG attributes the interval and writes the report, `aisle experiment status`
prints the per-look table, and `aisle experiment stop --promote` moves the champion alias (the
audit log says the experiment decided). The cluster is rolled back at the end."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from aisle.cli.app import app
from core.arms import arm_of
from core.audit import AuditLog
from features.stream.zones import read_answers

pytestmark = [pytest.mark.integration, pytest.mark.slow]
runner = CliRunner()


def aisle(settings, monkeypatch, *args: str):
    for name, value in settings.secrets_env().items():
        monkeypatch.setenv(name, value)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, [*args, "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    return result.output


def test_an_experiment_splits_shoppers_is_monitored_and_promotes_by_decision(
    cluster, world, api_key, monkeypatch
):
    from mlflow import MlflowClient

    from aisle import airflow_env
    from aisle.replay import load_dag
    from serving.admin import GatewayAdmin
    from serving.sandbox import fit_recommender, register

    challenger, _, _ = fit_recommender(cluster, write_online=False)
    version = register(cluster, "recommender", challenger)
    said = aisle(cluster, monkeypatch, "experiment", "start", "recommender", "--challenger",
                 version, "--share", "0.5", "--metric", "clicks")  # fmt: skip
    assert f"version {version}" in said and "50%" in said
    experiment = GatewayAdmin(cluster).experiments()["recommender"]
    assert experiment["status"] == "running" and experiment["treatment_version"] == version

    def failovers() -> float:
        metrics = httpx.get(cluster.gateway_url + "/metrics", timeout=10).text
        line = 'aisle_gateway_failovers_total{model="recommender"} '
        return sum(float(row.removeprefix(line)) for row in metrics.splitlines()
                   if row.startswith(line))  # fmt: skip

    failovers_before = failovers()
    users = world.users[:60]
    by_arm = []
    for user in users:
        answer = httpx.post(cluster.gateway_url + "/recommend", json={"user_id": user},
                            headers={"X-API-Key": api_key}, timeout=30)  # fmt: skip
        assert answer.status_code == 200
        # the challenger answers its arm; the champion (whatever earlier tests left live) the rest
        treated = arm_of(experiment["id"], user, 0.5) == "treatment"
        by_arm.append((answer.json()["model_version"] == version) == treated)
    # Only a counted failover (the arm's slot down) answers a unit from the other colour; its
    # arm in the answer log is still the assigned one (below).
    assert by_arm.count(False) <= failovers() - failovers_before, by_arm

    def logged():
        answers = read_answers(cluster).to_pandas()
        return answers[answers["experiment"] == experiment["id"]]

    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while len(logged()) < len(users) and datetime.now(UTC) < deadline:
        time.sleep(0.5)  # the consumer writes the answer log in batches
    found = logged()
    assert len(found) == len(users)
    assert set(found["arm"]) == {"control", "treatment"}
    assert all(
        arm == arm_of(experiment["id"], user, 0.5)
        for user, arm in zip(found["user_id"], found["arm"], strict=True)
    )

    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    airflow_env.migrate_db(cluster)
    with airflow_env.configured(cluster):
        run = load_dag("experiment_monitor").test(
            run_conf={"start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat()}
        )
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {"attribute": "success", "decide": "success", "act": "success"}
    report = cluster.data_dir / "monitoring" / "experiments" / f"{experiment['id']}.html"
    assert "continue" in report.read_text().lower()  # 60 shoppers decide nothing yet

    status = aisle(cluster, monkeypatch, "experiment", "status", "recommender")
    assert experiment["id"] in status and "decision: continue" in status

    stopped = aisle(cluster, monkeypatch, "experiment", "stop", "recommender", "--promote",
                    "--reason", "the test decided")  # fmt: skip
    assert "promoted" in stopped
    champion = MlflowClient().get_model_version_by_alias("recommender", "champion")
    assert str(champion.version) == version
    steps = [e["step"] for e in AuditLog(cluster).entries("recommender")
             if e.get("experiment") == experiment["id"]]  # fmt: skip
    assert steps[0] == "started" and steps[-2:] == ["decision", "promoted"]
    route = GatewayAdmin(cluster).status()["recommender"]
    assert route["active"] == experiment["treatment"]

    aisle(cluster, monkeypatch, "rollback", "recommender")  # the other tests' champion again
