"""What landed where: the ETL run summaries per dataset and table.

Event tables add up over their runs; an attribute table is a snapshot, so its counts are those of
its latest snapshot (adding up 32 copies of the same item list would say nothing)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.schemas import table_spec
from core.settings import Settings


@dataclass
class TableTotals:
    dataset: str
    table: str
    runs: int = 0
    first: str = ""
    last: str = ""
    rows_in: int = 0
    curated: int = 0
    quarantined: int = 0
    duplicates: int = 0
    purchases_without_price: int = 0  # curated, kept: price features read them as missing
    reconciles: bool = True
    snapshot: bool = False


def zone_summary(settings: Settings) -> list[TableTotals]:
    totals: dict[tuple[str, str], TableTotals] = {}
    for path in sorted(settings.runs_dir.glob("*/*/date=*.json")):
        run = json.loads(path.read_text())
        key = (run["dataset"], run["table"])
        snapshot = table_spec(run["table"]).time_column is None
        t = totals.setdefault(key, TableTotals(*key, snapshot=snapshot))
        day = path.stem.removeprefix("date=")
        t.runs += 1
        t.first = min(t.first or day, day)
        t.last = max(t.last, day)
        for name in ("rows_in", "curated", "quarantined", "duplicates", "purchases_without_price"):
            # Paths are sorted by date, so a snapshot ends with its latest counts.
            before = 0 if snapshot else getattr(t, name)
            setattr(t, name, before + int(run.get(name, 0)))  # older runs lack the last
        t.reconciles &= bool(run["reconciles"])
    return list(totals.values())


@dataclass
class FeatureTableTotals:
    dataset: str
    view: str
    partitions: int
    first: str
    last: str
    rows_newest: int  # entities in the newest partition: what the online store serves now


def feature_summary(settings: Settings) -> list[FeatureTableTotals]:
    """Per dataset and view: the daily feature partitions written so far."""
    import pyarrow.parquet as pq

    found = []
    for view_dir in sorted((settings.data_dir / "features").glob("*/*")):
        parts = sorted(p for p in view_dir.glob("date=*/part-0.parquet"))
        if not parts:
            continue
        days = [p.parent.name.removeprefix("date=") for p in parts]
        newest = pq.read_metadata(parts[-1]).num_rows
        found.append(
            FeatureTableTotals(
                view_dir.parent.name, view_dir.name, len(parts), days[0], days[-1], newest
            )
        )
    return found
