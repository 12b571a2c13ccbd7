"""The features stage as plain functions: build the feature tables of an interval, register the
definitions when they changed, materialise the interval into the online store.

The `features` DAG, the `aisle features` commands and the tests call these; each takes a flow
(`interactions` feeds the recommender's views, `sales` the pricing views) and a data interval,
and returns a JSON-able summary (what goes to XCom).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from aisle.settings import Settings, get_settings

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
    interval = Interval.parse(start, end)
    views = store.materialize(settings or get_settings(), interval, flow=flow)
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
    event_extras: Iterable[Mapping[str, Any]], params: Mapping[str, Any] | None = None
) -> list[dict[str, str]]:
    """The (flow, start, end) triples a features run must process, in time order.

    Scheduled runs get them from the ingest's Asset events (each carries its flow and interval
    in `extra`); a manual run from its params. Several events for one interval count once.
    """
    wanted = [dict(e) for e in event_extras if e.get("flow") and e.get("start")]
    if not wanted and params and params.get("flow"):
        wanted = [{k: str(params[k]) for k in ("flow", "start", "end")}]
    if not wanted:
        raise ValueError(
            "nothing to process: no ingest Asset event with an interval, and no flow/start/end "
            "params (trigger with e.g. {'flow': 'sales', 'start': '1990-06-14', 'end': "
            "'1990-06-21'})"
        )
    unique = {(e["flow"], str(e["start"]), str(e["end"])) for e in wanted}
    for flow, start, end in unique:
        flow_tables(flow)
        Interval.parse(start, end)  # a clear error now rather than mid-run
    return [{"flow": f, "start": s, "end": e} for f, s, e in sorted(unique, key=lambda t: t[1])]
