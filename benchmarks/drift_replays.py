"""The drift timelines of the real replays: MovieLens-100k (the recommender, weekly intervals)
and Dominick's orange juice (the pricing model, weekly), as the drift_monitor DAG would have
drawn them had the shop been live, and the plots the README shows.

    .venv/bin/python benchmarks/drift_replays.py

Each data set is ingested into a private data folder (the ETL of the ingest DAG, one call for
the whole span), then every week after the first `AISLE_DRIFT__REFERENCE_DAYS` is checked with
`aisle drift check`'s code path (no champion: each week against the weeks before it), retrain
decisions with the cool-down included, and the timeline plotted. Plots: docs/images/; the
per-week numbers: benchmarks/results/drift_replays.{json,md}.
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime, timedelta

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchmarks.common import ROOT, WORK, machine, provide_sources, write_results  # noqa: E402

REPLAYS = {
    "recommender": ("movielens", "interactions", datetime(1997, 9, 20), datetime(1998, 4, 23)),
    "pricing": ("orange_juice", "sales", datetime(1990, 6, 14), datetime(1992, 10, 8)),
}
IMAGES = ROOT / "docs" / "images"


def replay(model: str) -> dict:
    from core.settings import get_settings
    from features.ingest import ingest
    from monitoring.retrain import check_intervals_step
    from monitoring.timeline import plot

    source, flow, start, end = REPLAYS[model]
    folder = WORK / "drift_replays" / model / "data"
    shutil.rmtree(folder.parent, ignore_errors=True)
    settings = get_settings(data_dir=folder, **{f"{flow}_source": source, "tracking_uri": None})
    provide_sources(settings, source)
    ingest(flow, start.date(), end.date(), settings)
    weeks = []
    when = start + timedelta(days=settings.drift.reference_days)
    while when + timedelta(days=7) <= end:
        interval = {
            "flow": flow,
            "start": when.isoformat(),
            "end": (when + timedelta(7)).isoformat(),
        }
        (result,) = check_intervals_step([interval], settings)
        weeks.append(result)
        print(f"{model} {when.date()}: drift {result['drift']} {result['drifted_columns']}")
        when += timedelta(days=7)
    paths = plot(settings, model)
    IMAGES.mkdir(parents=True, exist_ok=True)
    image = IMAGES / f"drift_{model}_{source}.png"
    shutil.copyfile(paths["png"], image)
    drifted = sum(w["drift"] for w in weeks)
    return {
        "model": model,
        "source": source,
        "weeks": len(weeks),
        "drifted_weeks": drifted,
        "retrains": sum(w["retrain"] for w in weeks),
        "columns": _column_counts(weeks),
        "image": str(image.relative_to(ROOT)),
        "per_week": weeks,
    }


def _column_counts(weeks: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for week in weeks:
        for column in week["drifted_columns"] or (["volume"] if week["drift"] else []):
            counts[column] = counts.get(column, 0) + 1
    return counts


def main() -> None:
    rows = [replay(model) for model in REPLAYS]
    lines = [
        "# Drift timelines of the real replays (weekly intervals, each against the 28 days "
        "before it)",
        "",
        "| model | data | weeks checked | drift confirmed | retrains triggered | columns that "
        "drifted (weeks) | plot |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        columns = ", ".join(
            f"{c} {n}" for c, n in sorted(r["columns"].items(), key=lambda x: -x[1])
        )
        lines.append(
            f"| {r['model']} | {r['source']} | {r['weeks']} | {r['drifted_weeks']} "
            f"| {r['retrains']} | {columns} | {r['image']} |"
        )
    write_results("drift_replays", {"machine": machine(), "replays": rows}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
