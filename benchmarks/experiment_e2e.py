"""One online experiment end to end through HTTP on the running stack: the responsive simulated
shop in front of the gateway, the champion (a popularity recommender) against a challenger (the
factor model trained on the shop's history), the answer log and the shop's events through the
event stream, the `experiment_monitor` DAG run by Airflow (attribute, decide, act), and the
experiment's decision moving the `champion` alias.

    .venv/bin/python benchmarks/experiment_e2e.py [--minutes 3] [--rate 15]

Results: the `end_to_end` key of benchmarks/results/experiments.json (and a line in its .md).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import time

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchmarks.common import RESULTS, WORK  # noqa: E402

WORLD = {"users": 3_000, "items": 600, "stores": 3, "events": 120_000, "days": 56, "seed": 11}


def settings_for(folder):
    from core.settings import get_settings

    return get_settings(
        data_dir=folder / "data",
        interactions_source="simulator",
        simulator=WORLD,
        gateway_port=18800,
        slot_port_base=18810,
        admin_token=secrets.token_hex(16),
        api_keys=["e2e-" + secrets.token_hex(4)],
        events={"broker_port": 18830, "consumer_port": 18832},
        # time runs fast in this shop (a simulated day is 30 s): a shopper is judged on the
        # minute after their first answer, and the plan is what 2 minutes of traffic reach
        experiments={
            "expected_units": {"recommender": 800, "pricing": 800},
            "unit_window_hours": {"recommender": 1 / 60, "pricing": 168},
            "pre_period_days": 0,
        },
    )


def register_models(settings) -> tuple[str, str]:
    """The champion: popularity (a rank-1 factor model, every history scoring items by their
    interactions); the challenger: the factor model fitted on the shop's interactions. Both
    serve the same way; each user's history is written to the online store."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from features.store import apply, feature_store
    from serving.sandbox import register
    from training.recommender.factors import FactorConfig, FactorRecommender
    from training.tracking import CHALLENGER, CHAMPION, set_alias

    apply(settings)
    events = pd.read_parquet(settings.sources_dir / "simulator" / "interactions.parquet")
    users = {u: n for n, u in enumerate(sorted(events.user_id.unique()))}
    items = sorted(events.item_id.unique())
    column = {i: n for n, i in enumerate(items)}
    matrix = sp.csr_matrix(
        (np.ones(len(events)), (events.user_id.map(users), events.item_id.map(column))),
        shape=(len(users), len(items)),
    )
    trained = FactorRecommender.fit(matrix, items, FactorConfig(rank=32))
    popularity = np.asarray((matrix > 0).sum(0)).ravel().astype(float)
    ones = np.ones((len(items), 1))
    popular = FactorRecommender(ones, (popularity / popularity.max())[:, None], items, popularity,
                                metadata={"model": "popularity"})  # fmt: skip
    champion = register(settings, "recommender", popular)
    challenger = register(settings, "recommender", trained)
    set_alias("recommender", CHAMPION, champion)
    set_alias("recommender", CHALLENGER, challenger)
    history = (
        events.sort_values("timestamp", ascending=False)
        .drop_duplicates(["user_id", "item_id"])
        .groupby("user_id", sort=True)
        .agg(history_item_ids=("item_id", list), event_timestamp=("timestamp", "max"))
        .reset_index()
    )
    history["history_length"] = history.history_item_ids.map(len).astype("int64")
    feature_store(settings).write_to_online_store("user_history_fv", history)
    return champion, challenger


def wait_for_answer_log(settings, answers: int, timeout_s: float = 60.0) -> None:
    """Until the consumer has landed every answer the shop got (or the timeout)."""
    from features.stream.zones import read_answers

    deadline = time.monotonic() + timeout_s
    while read_answers(settings).num_rows < answers and time.monotonic() < deadline:
        time.sleep(0.5)


def run_monitor_dag(settings, start, end) -> dict[str, str]:
    """The experiment_monitor DAG, run by Airflow (`dag.test`: its runs and task logs land in
    the metadata DB the UI reads)."""
    from aisle import airflow_env
    from aisle.replay import load_dag

    dag = load_dag("experiment_monitor")
    airflow_env.migrate_db(settings)
    with airflow_env.configured(settings):
        result = dag.test(run_conf={"start": start.isoformat(), "end": end.isoformat()})
    return {ti.task_id: str(ti.state) for ti in result.get_task_instances()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=15.0, help="shop requests a second")
    args = parser.parse_args()

    folder = WORK / "experiment_e2e"
    shutil.rmtree(folder, ignore_errors=True)
    settings = settings_for(folder)
    from aisle import airflow_env

    airflow_env.configure(settings)  # before Airflow is imported: it reads its home then
    os.environ.update(settings.secrets_env())  # the DAG's tasks act with the admin token
    from datetime import UTC, datetime, timedelta

    from aisle.responsive_shop import ResponsiveShop
    from aisle.stack import stop, up_event_stream
    from core.audit import AuditLog
    from features.sources.prepare import prepare
    from serving.cluster import down, up
    from serving.deploy import start_experiment_step
    from training.tracking import CHAMPION, point_at_store

    began = time.perf_counter()
    prepare(settings, "simulator")
    champion, challenger = register_models(settings)
    print(f"champion v{champion} (popularity), challenger v{challenger} (factors)", flush=True)
    try:
        up_event_stream(settings)
        up(settings, on_step=lambda m: print(m, flush=True))
        experiment = start_experiment_step("recommender", challenger, settings, metric="clicks",
                                           guardrail_metrics=[])  # fmt: skip
        print(f"experiment {experiment['id']} started", flush=True)
        shop = ResponsiveShop(settings, per_second=args.rate, shelves=0, day_seconds=30)
        shop_summary = shop.run(args.minutes * 60)
        wait_for_answer_log(settings, len(shop.truth()))
        # the DAG's interval: the whole UTC day the experiment ran in (intervals are days)
        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        tasks = run_monitor_dag(settings, day, day + timedelta(days=1))
        from mlflow import MlflowClient

        point_at_store(settings)
        alias = MlflowClient().get_model_version_by_alias("recommender", CHAMPION).version
        audit = [
            e for e in AuditLog(settings).entries("recommender") if e["action"] == "experiment"
        ]
        truth = shop.truth()
    finally:
        down(settings)
        for name in ("supervisor", "events-consumer", "events-broker"):
            stop(settings, name)

    failed = {
        f"{path} {status}": n
        for path, statuses in shop_summary["requests"].items()
        for status, n in statuses.items()
        if not str(status).startswith("2")
    }
    by_version = truth.groupby("model_version")["click"].agg(["count", "mean"]).round(4)
    decision = next((e for e in audit if e["step"] == "decision"), {})
    report = {
        "minutes": args.minutes,
        "rate": args.rate,
        "champion_before": champion,
        "challenger": challenger,
        "champion_after": alias,
        "decision": decision.get("decided"),
        "reason": decision.get("reason"),
        "dag_tasks": tasks,
        "failed_requests": failed,
        "requests": shop_summary["requests"],
        "events": shop_summary["events"],
        "true_click_rate_by_version": by_version.to_dict(orient="index"),
        "audit_steps": [e["step"] for e in audit],
        "seconds": round(time.perf_counter() - began, 1),
    }
    print(json.dumps(report, indent=2, default=str))
    path = RESULTS / "experiments.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["end_to_end"] = report
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    line = (
        f"\nEnd to end through HTTP ({args.minutes:g} min at {args.rate:g} requests/s, "
        f"benchmarks/experiment_e2e.py): decision **{report['decision']}**, champion "
        f"v{champion} -> v{alias}, failed requests: {sum(failed.values())}; DAG tasks "
        f"{tasks}.\n"
    )
    md = RESULTS / "experiments.md"
    text = md.read_text().split("\nEnd to end through HTTP")[0] if md.exists() else ""
    md.write_text(text.rstrip("\n") + "\n" + line)


if __name__ == "__main__":
    main()
