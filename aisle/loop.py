"""The closed loop, run by Airflow's scheduler over a replay of the real timelines.

    bootstrap   the history before the live span, ingested and featurised in one interval per
                flow by the same steps the DAGs run (`features.ingest`, `features.pipeline`):
                the shop's past, which the scheduler need not walk run by run
    live        `aisle stack up`, then one Airflow backfill per ingest DAG over the last
                intervals of each timeline; from there nothing is done by hand:

        ingest_<flow> ─► features ─► drift_monitor ─► <model>_training ─► gate ─► promote_model
          (backfill)   (Asset        (Asset           (Asset retrain_*:    (Asset challenger_*:
                       curated_*)    online_features)  drift, or no        blue-green onto the
                                                       champion yet)       gateway)

    wait        until every run the backfills set off has settled and both models are live
    summary     runs, champions with their metrics, drift events, promotions, the URLs

`make demo` is this with two live intervals per flow on the embedded default; the production
profile runs the same with AISLE_PROFILE=production.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.settings import Settings
from features.storage import Interval
from training.stages import all_models

from . import replay

FLOWS = ("interactions", "sales")
MODELS = tuple(all_models())  # every model package under training/ (training/stages.py)
DAG_ORDER = (
    "ingest_interactions",
    "ingest_sales",
    "features",
    "drift_monitor",
    "recommender_training",
    "pricing_training",
    "promote_model",
)
SETTLED = {"success", "failed"}


class LoopError(RuntimeError):
    """The loop did not settle in time, or a run failed; the message says which."""


@dataclass(frozen=True)
class FlowPlan:
    flow: str
    history: Interval  # bootstrapped before the scheduler starts
    live: list[Interval]  # the scheduler's backfill


@dataclass
class LoopResult:
    plans: list[FlowPlan]
    started: float
    finished: float
    runs: list[dict[str, Any]] = field(default_factory=list)  # every DAG run of the loop
    traffic: dict[str, dict[str, int]] = field(default_factory=dict)  # path -> status -> count
    answered: set[str] = field(default_factory=set)  # request ids the shop got answers for
    samples: dict[str, tuple[dict, dict]] = field(default_factory=dict)  # path -> last 200


def plan(settings: Settings, live_intervals: int | dict[str, int] = 2) -> list[FlowPlan]:
    """Per flow: its last `live_intervals` schedule intervals (a number for every flow, or one
    per flow) go live, the rest is history."""
    wanted = (
        live_intervals if isinstance(live_intervals, dict) else dict.fromkeys(FLOWS, live_intervals)
    )
    plans = []
    for flow in FLOWS:
        count = wanted.get(flow, 0)
        if count < 1:
            raise ValueError(
                f"the loop needs at least one live interval per flow ({flow}: {count})"
            )
        first, last = replay.timeline(settings, flow)
        intervals = replay.intervals(settings.schedule_for(flow), first, last)
        if len(intervals) <= count:
            raise ValueError(f"{flow}: {len(intervals)} intervals, too few to keep a history")
        live = intervals[-count:]
        plans.append(FlowPlan(flow, Interval(intervals[0].start, live[0].start), live))
    return plans


def replay_settings(settings: Settings, plans: list[FlowPlan]) -> Settings:
    """The settings a replay's stack runs with: its calendars end with the timelines, so the
    wall clock (decades later) adds no scheduled runs; backfills and Asset events drive it."""
    return settings.model_copy(update={"calendar_end": max(p.live[-1].end for p in plans)})


def bootstrap(
    settings: Settings, plans: list[FlowPlan], on_step: Callable[[str], None] = print
) -> None:
    """Ingest and featurise each flow's history (idempotent: a rerun rewrites the same files)."""
    from features.ingest import ingest
    from features.pipeline import run_features

    from .stack import ensure_databases

    ensure_databases(settings)  # production: Feast's registry lives in PostgreSQL
    for p in plans:
        on_step(f"history of {p.flow}: {p.history.start.date()} to {p.history.end.date()}")
        ingest(p.flow, p.history.start, p.history.end, settings)
        run_features(p.flow, p.history.start, p.history.end, settings)


def run_live(
    settings: Settings,
    plans: list[FlowPlan],
    on_progress: Callable[[dict[str, Counter]], None] | None = None,
    timeout_s: float = 1800.0,
    settle_s: float = 20.0,
    shop_rate: float = 4.0,
) -> LoopResult:
    """Backfill the live intervals and wait until the loop they start has settled: every ingest
    run done, nothing queued or running for `settle_s`, both models live (or `timeout_s`).
    Meanwhile a shop scores through the gateway, `shop_rate` requests a second (aisle.shop)."""
    from .airflow_api import AirflowApi
    from .shop import ShopTraffic, shop_requests

    api = AirflowApi(settings)
    shop = ShopTraffic(settings, shop_requests(settings), per_second=shop_rate).start()
    try:
        result = _backfill_and_wait(api, settings, plans, on_progress, timeout_s, settle_s)
    finally:
        traffic = shop.stop()
    result.traffic = traffic
    result.answered = set(shop.answered)
    result.samples = dict(shop.samples)
    return result


def _backfill_and_wait(api, settings, plans, on_progress, timeout_s, settle_s) -> LoopResult:
    started = time.time()
    expected = {}
    for p in plans:
        dag_id = f"ingest_{p.flow}"
        api.backfill(dag_id, p.live[0].start, p.live[-1].start)
        expected[dag_id] = len(p.live)
    quiet_since = None
    while True:
        runs = [r for r in api.runs() if _after(r, started)]
        states = _states(runs)
        if on_progress:
            on_progress(states)
        # a failed promotion is an outcome (a challenger refused or rolled back; the audit log
        # and the summary say which), any other failed run a broken pipeline
        failed = [r for r in runs if r["state"] == "failed" and r["dag_id"] != "promote_model"]
        if failed:
            raise LoopError(
                "a run failed: "
                + ", ".join(f"{r['dag_id']} {r['dag_run_id']}" for r in failed)
                + " (its task logs say why: Airflow UI, or data/airflow/logs/)"
            )
        ingested = all(
            sum(states.get(dag_id, Counter()).values()) >= n and _settled(states.get(dag_id))
            for dag_id, n in expected.items()
        )
        idle = all(_settled(c) for c in states.values())
        if ingested and idle and all(champion(settings, m) for m in MODELS):
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle_s:
                return LoopResult(plans, started, time.time(), runs)
        else:
            quiet_since = None
        if time.time() - started > timeout_s:
            raise LoopError(f"the loop did not settle in {timeout_s:.0f} s: {_describe(states)}")
        time.sleep(3)


def _after(run: dict[str, Any], started: float) -> bool:
    """A run the loop set off (created after its backfills), not an earlier one."""
    when = run.get("queued_at") or run.get("run_after")
    return when is not None and datetime.fromisoformat(when).timestamp() >= started - 5


def _states(runs: list[dict[str, Any]]) -> dict[str, Counter]:
    states: dict[str, Counter] = {}
    for r in runs:
        states.setdefault(r["dag_id"], Counter())[r["state"]] += 1
    return states


def _settled(counts: Counter | None) -> bool:
    return bool(counts) and set(counts) <= SETTLED


def _describe(states: dict[str, Counter]) -> str:
    return "; ".join(f"{d}: {dict(c)}" for d, c in sorted(states.items())) or "no runs"


def champion(settings: Settings, model: str) -> dict[str, Any] | None:
    """The model's champion version with its gate metrics, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from training.tracking import CHAMPION, point_at_store

    point_at_store(settings)
    try:
        version = MlflowClient().get_model_version_by_alias(model, CHAMPION)
    except MlflowException:
        return None
    metrics = json.loads(version.tags.get("aisle.gate.metrics", "{}")).get("challenger", {})
    return {
        "version": str(version.version),
        "data_interval_end": version.tags.get("data_interval_end"),
        "metrics": metrics,
        "forced_by": version.tags.get("aisle.gate.forced_by"),
    }


def summary(settings: Settings, result: LoopResult) -> dict[str, Any]:
    """What the loop did, for the demo's closing tables and benchmarks/loop.py."""
    from core.audit import AuditLog

    from .stack import airflow_password_file

    since = datetime.fromtimestamp(result.started).astimezone().isoformat()
    promotions = [
        e
        for e in AuditLog(settings).entries()
        if e["action"] == "promote"
        and e["step"] in ("promoted", "rejected", "rolled_back")
        and e["at"] >= since
    ]
    return {
        "seconds": round(result.finished - result.started, 1),
        "live": {p.flow: [i.key for i in p.live] for p in result.plans},
        "runs": {d: dict(c) for d, c in sorted(_states(result.runs).items(), key=_dag_rank)},
        "champions": {m: champion(settings, m) for m in MODELS},
        "traffic": result.traffic,
        "answer_log": answer_log_coverage(settings, result.answered),
        "samples": {p: {"request": q, "answer": a} for p, (q, a) in result.samples.items()},
        "currency": settings.quoting.currency,
        "drift": drift_events(settings, result.plans),
        "promotions": [
            {k: e.get(k) for k in ("at", "model", "version", "previous_version", "step", "reason")}
            for e in promotions
        ],
        "urls": {
            "Airflow UI": f"{settings.airflow_url}  (user admin, password in "
            f"{airflow_password_file(settings)})",
            "MLflow UI": settings.mlflow_url,
            "recommend": f"{settings.gateway_url}/recommend",
            "price": f"{settings.gateway_url}/price",
        },
    }


def answer_log_coverage(
    settings: Settings, answered: set[str], wait_s: float = 20.0
) -> dict[str, int]:
    """How many of the shop's answers the answer log holds (waiting for the stream to flush)."""
    from features.stream.zones import read_answers

    deadline = time.monotonic() + wait_s
    while True:
        logged = answered & set(read_answers(settings).column("request_id").to_pylist())
        if len(logged) == len(answered) or time.monotonic() > deadline:
            return {"answered": len(answered), "logged": len(logged)}
        time.sleep(1)


def _dag_rank(item: tuple[str, Any]) -> int:
    return DAG_ORDER.index(item[0]) if item[0] in DAG_ORDER else len(DAG_ORDER)


def drift_events(settings: Settings, plans: list[FlowPlan]) -> list[dict[str, Any]]:
    """The drift checks of the live intervals: drifted or not, the columns, the champion's
    realised performance and its band, the retrain asked."""
    from monitoring.monitor import monitoring_dir
    from monitoring.performance import performance_text

    live_starts = {i.start.isoformat(): p.flow for p in plans for i in p.live}
    found = []
    for model in MODELS:
        path = monitoring_dir(settings, model) / "timeline.jsonl"
        if not path.exists():
            continue
        retrains = _retrains(settings, model)
        for line in path.read_text().splitlines():
            record = json.loads(line)
            start = record["interval"]["start"]
            if start in live_starts:
                found.append(
                    {
                        "model": model,
                        "interval": start[:10],
                        "drift": record["drift"],
                        "columns": record["drifted_columns"],
                        "performance": performance_text(record.get("performance")) or "—",
                        "retrain": retrains.get(start, "—"),
                    }
                )
    return found


def _retrains(settings: Settings, model: str) -> dict[str, str]:
    from monitoring.monitor import monitoring_dir

    path = monitoring_dir(settings, model) / "retrains.jsonl"
    if not path.exists():
        return {}
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    return {r["interval_start"]: r["reason"] for r in lines}
