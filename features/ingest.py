"""The ingest stage as plain functions: land, then ETL, per table of a flow, for one interval.

A *flow* is the event table a model lives on plus the attribute tables that describe it:
`interactions` (+ items) feeds the recommender, `sales` (+ items, stores) the pricing model.
The Airflow DAG, the CLI and the tests all call these functions.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import date, datetime

from core.schemas import FLOWS
from core.settings import Settings, get_settings

from .etl import run_etl
from .landing import land, prepared_path
from .sources import Source, resolve
from .storage import Interval

log = logging.getLogger(__name__)


class NotProvidedError(LookupError):
    """The flow's source does not provide this attribute table (a shop's file holds one table)."""


def flow_tables(flow: str) -> tuple[str, ...]:
    try:
        return FLOWS[flow]
    except KeyError:
        raise ValueError(f"unknown flow {flow!r}; flows: {', '.join(FLOWS)}") from None


def source_of(settings: Settings, flow: str, table: str) -> Source:
    """The source of `table` within `flow`: the flow's configured source."""
    if table not in flow_tables(flow):
        raise ValueError(f"flow {flow!r} has no table {table!r}")
    source = resolve(settings.source_for(flow))
    if table != flow and (
        not source.is_replay or not prepared_path(settings, source.dataset, table).exists()
    ):
        raise NotProvidedError(
            f"the {flow} source {settings.source_for(flow)!r} provides no {table} table"
        )
    return source


def land_step(
    flow: str,
    table: str,
    start: date | datetime | str,
    end: date | datetime | str,
    settings: Settings | None = None,
) -> dict[str, object]:
    """Land one table of a flow for [start, end). Returns where it went (JSON-able)."""
    settings = settings or get_settings()
    landed = land(settings, table, Interval.parse(start, end), source_of(settings, flow, table))
    return {**asdict(landed), "path": str(landed.path)}


def etl_step(
    flow: str,
    table: str,
    start: date | datetime | str,
    end: date | datetime | str,
    settings: Settings | None = None,
) -> dict[str, object]:
    """Validate one landed table of a flow for [start, end). Returns the run summary."""
    settings = settings or get_settings()
    dataset = source_of(settings, flow, table).dataset
    return run_etl(settings, dataset, table, Interval.parse(start, end)).to_dict()


def ingest_attributes(
    flow: str,
    start: date | datetime | str,
    end: date | datetime | str,
    settings: Settings | None = None,
) -> list[dict[str, object]]:
    """Land and ETL the attribute tables of `flow` that its source provides, for [start, end)."""
    settings = settings or get_settings()
    summaries = []
    for table in flow_tables(flow)[1:]:
        try:
            land_step(flow, table, start, end, settings)
        except NotProvidedError as missing:
            log.info("skipped: %s", missing)
            continue
        summaries.append(etl_step(flow, table, start, end, settings))
    return summaries


def ingest(
    flow: str,
    start: date | datetime | str,
    end: date | datetime | str,
    settings: Settings | None = None,
) -> list[dict[str, object]]:
    """Land and ETL the flow's event table and its attribute tables, for [start, end)."""
    settings = settings or get_settings()
    land_step(flow, flow, start, end, settings)
    events = etl_step(flow, flow, start, end, settings)
    return [events, *ingest_attributes(flow, start, end, settings)]
