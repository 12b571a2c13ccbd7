"""The features stage as plain functions: build the feature tables of an interval, register the
definitions when they changed, materialise the interval into the online store.

The `features` DAG, the `aisle features` commands and the tests call these; each takes a flow
(`interactions` feeds the recommender's views, `sales` the pricing views) and a data interval,
and returns a JSON-able summary (what goes to XCom).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from core.files import write_json_atomic
from core.settings import Settings, get_settings

from . import store
from .feature_tables import build_feature_tables
from .ingest import flow_tables
from .pricing_tables import build_pricing_tables
from .sources import resolve
from .storage import Interval

log = logging.getLogger(__name__)

BUILDERS = {"interactions": build_feature_tables, "sales": build_pricing_tables}
When = date | datetime | str


def build_step(
    flow: str, start: When, end: When, settings: Settings | None = None
) -> dict[str, Any]:
    """Write the flow's feature tables for every day of [start, end)."""
    settings = settings or get_settings()
    flow_tables(flow)  # a clear error for an unknown flow
    dataset = resolve(settings.source_for(flow)).dataset
    interval = Interval.parse(start, end)
    written = BUILDERS[flow](settings, dataset, interval)
    return {
        "flow": flow,
        "dataset": dataset,
        "interval": str(interval),
        "partitions": {view: len(paths) for view, paths in written.items()},
    }


def apply_step(settings: Settings | None = None, force: bool = False) -> dict[str, Any]:
    """Register the definitions in the Feast registry if they changed (`feast apply`)."""
    applied = store.apply(settings or get_settings(), force=force)
    log.info(
        "feast definitions %s (%s)",
        "applied" if applied.changed else "unchanged",
        applied.fingerprint[:12],
    )
    return asdict(applied)


def materialize_step(
    flow: str, start: When, end: When, settings: Settings | None = None
) -> dict[str, Any]:
    """Load the flow's feature rows of [start, end] into the online store."""
    settings = settings or get_settings()
    interval = Interval.parse(start, end)
    views = store.materialize(settings, interval, flow=flow)
    mark_processed(flow, start, end, settings)
    return {"flow": flow, "interval": str(interval), "views": views}


def run_features(
    flow: str, start: When, end: When, settings: Settings | None = None
) -> dict[str, Any]:
    """All three steps for one interval, in the DAG's order."""
    settings = settings or get_settings()
    built = build_step(flow, start, end, settings)
    applied = apply_step(settings)
    materialized = materialize_step(flow, start, end, settings)
    return {**built, "applied": applied["changed"], "views": materialized["views"]}


def intervals_to_process(
    event_extras: Iterable[Mapping[str, Any]],
    params: Mapping[str, Any] | None = None,
    pending: Iterable[Mapping[str, Any]] = (),
) -> list[dict[str, str]]:
    """The (flow, start, end) triples a features run must process, in time order.

    Scheduled runs get them from the ingest's Asset events (each carries its flow and interval
    in `extra`), a manual run from its params; `pending` adds the curated intervals no features
    run has processed yet (see `pending_intervals`). Each interval counts once; an empty list
    means everything is up to date.
    """
    wanted = [dict(e) for e in event_extras if e.get("flow") and e.get("start")]
    if params and any(params.get(k) for k in ("flow", "start", "end")):
        missing = [k for k in ("flow", "start", "end") if not params.get(k)]
        if missing:
            raise ValueError(f"a manual run needs flow, start and end; missing {missing}")
        wanted.append({k: str(params[k]) for k in ("flow", "start", "end")})
    wanted += [dict(p) for p in pending]
    unique = set()
    for e in wanted:
        flow_tables(e["flow"])  # clear errors now rather than mid-run
        interval = Interval.parse(e["start"], e["end"])
        unique.add((e["flow"], interval.start.isoformat(), interval.end.isoformat()))
    return [{"flow": f, "start": s, "end": e} for f, s, e in sorted(unique, key=lambda t: t[1:])]


# The ledger of processed intervals. Airflow can drop Asset events that arrive while the features
# DAG is at max_active_runs (apache/airflow#56050, open in 3.3), so each run also picks up every
# curated interval whose ETL summary is newer than the features built from it.


def _ledger_path(settings: Settings, flow: str) -> Path:
    dataset = resolve(settings.source_for(flow)).dataset
    return settings.data_dir / "features" / dataset / "_processed" / f"{flow}.json"


def _etl_summaries(settings: Settings, flow: str) -> dict[str, Path]:
    """Interval -> its ETL run summary, for the flow's event table."""
    dataset = resolve(settings.source_for(flow)).dataset
    found = {}
    for path in sorted((settings.runs_dir / dataset / flow).glob("date=*.json")):
        start, end = json.loads(path.read_text())["interval"].strip("[)").split(", ")
        found[f"{start}/{end}"] = path
    return found


def pending_intervals(settings: Settings | None = None) -> list[dict[str, str]]:
    """Curated intervals (of both flows) whose features are missing or older than their data."""
    settings = settings or get_settings()
    pending = []
    for flow in BUILDERS:
        ledger_path = _ledger_path(settings, flow)
        ledger = json.loads(ledger_path.read_text()) if ledger_path.exists() else {}
        for key, summary in _etl_summaries(settings, flow).items():
            if ledger.get(key) != summary.stat().st_mtime_ns:
                start, end = key.split("/")
                pending.append({"flow": flow, "start": start, "end": end})
    return pending


def mark_processed(flow: str, start: When, end: When, settings: Settings | None = None) -> None:
    """Record that the features of [start, end) reflect its current ETL summary."""
    settings = settings or get_settings()
    interval = Interval.parse(start, end)
    key = f"{interval.start.isoformat()}/{interval.end.isoformat()}"
    summary = _etl_summaries(settings, flow).get(key)
    if summary is None:
        return  # features built for an interval the ETL has no summary of (a manual range)
    path = _ledger_path(settings, flow)
    ledger = json.loads(path.read_text()) if path.exists() else {}
    ledger[key] = summary.stat().st_mtime_ns
    write_json_atomic(ledger, path)
