"""What landed where: the ETL run summaries, added up per dataset and table."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aisle.settings import Settings


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
    reconciles: bool = True


def zone_summary(settings: Settings) -> list[TableTotals]:
    totals: dict[tuple[str, str], TableTotals] = {}
    for path in sorted(settings.runs_dir.glob("*/*/date=*.json")):
        run = json.loads(path.read_text())
        key = (run["dataset"], run["table"])
        t = totals.setdefault(key, TableTotals(*key))
        day = path.stem.removeprefix("date=")
        t.runs += 1
        t.first = min(t.first or day, day)
        t.last = max(t.last, day)
        for name in ("rows_in", "curated", "quarantined", "duplicates"):
            setattr(t, name, getattr(t, name) + int(run[name]))
        t.reconciles &= bool(run["reconciles"])
    return list(totals.values())
