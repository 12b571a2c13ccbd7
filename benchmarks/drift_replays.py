"""The monitoring timelines of the real replays: MovieLens-100k (the recommender, weekly
intervals) and Dominick's orange juice (the pricing model, weekly), as the drift_monitor DAG
would have drawn them had the shop been live, before and after calibration, and the plots the
README shows.

    .venv/bin/python benchmarks/drift_replays.py [--models recommender pricing]

Each data set is ingested into a private data folder (the ETL of the ingest DAG, one call for
the whole span). Then two passes over the same weeks, each week checked with the code path of
`aisle drift check` (monitoring.retrain.check_intervals_step):

* **before**: what Aisle did until now: the configured thresholds (no calibration, no seasonal
  reference), one drifted column confirms drift, drift retrains; no champion, so each week is
  compared with the `AISLE_DRIFT__REFERENCE_DAYS` before it (the cool-down included).
* **after**: the defaults: calibrated thresholds, the same weeks a year earlier as a seasonal
  reference (where a year exists), the data-set-level decision, and a champion:
  the first one trained (training set, training, registration, gate: the stages the training
  DAG runs) as soon as the history covers its windows; every week its realised performance is
  judged against its band, and a retrain the monitor asks for trains a new version, which
  becomes the champion when it passes the gate (a promotion without serving).

`retrain_rate`: retrains in the weeks whose realised performance stayed inside its band, over
those weeks (the target is at most 15 %). Plots: docs/images/; the per-week numbers:
benchmarks/results/drift_replays.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import datetime, timedelta

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchmarks.common import (  # noqa: E402
    RESULTS,
    ROOT,
    WORK,
    machine,
    provide_sources,
    train_and_crown,
    write_results,
)

REPLAYS = {
    "recommender": ("movielens", "interactions", datetime(1997, 9, 20), datetime(1998, 4, 23)),
    "pricing": ("orange_juice", "sales", datetime(1990, 6, 14), datetime(1992, 10, 8)),
}
IMAGES = ROOT / "docs" / "images"
BEFORE = {  # the drift policy before calibration: fixed thresholds, drift retrains
    "calibration_chunks": 0,
    "seasonal_reference": False,
    "min_drifted_share": 0.01,
    "retrain_on_drift": True,
}


def replay(model: str, mode: str) -> dict:
    from core.settings import get_settings
    from features.ingest import ingest
    from monitoring.retrain import check_intervals_step
    from monitoring.timeline import plot

    source, flow, start, end = REPLAYS[model]
    folder = WORK / "drift_replays" / f"{model}-{mode}" / "data"
    shutil.rmtree(folder.parent, ignore_errors=True)
    drift = BEFORE if mode == "before" else {}
    settings = get_settings(data_dir=folder, drift=drift, **{f"{flow}_source": source})
    provide_sources(settings, source)
    ingest(flow, start.date(), end.date(), settings)
    if mode == "after":  # the feature tables and Feast's registry the training sets read
        from features.pipeline import run_features

        run_features(flow, start.date(), end.date(), settings)
    weeks, trainings = [], []
    when = start + timedelta(days=settings.drift.reference_days)
    while when + timedelta(days=7) <= end:
        interval = {"flow": flow, "start": when.isoformat(),
                    "end": (when + timedelta(days=7)).isoformat()}  # fmt: skip
        started = time.perf_counter()
        (result,) = check_intervals_step([interval], settings)
        result["seconds"] = round(time.perf_counter() - started, 1)
        if mode == "after" and result["retrain"]:
            trainings.append(train_and_crown(settings, model, when + timedelta(days=7)))
            result["trained"] = trainings[-1]
        weeks.append(result)
        performance = result.get("performance") or {}
        print(f"{model} {mode} {when.date()}: drift {result['drift']} "
              f"{result['drifted_columns']} performance {performance.get('value')} "
              f"dropped {performance.get('dropped')} retrain {result['retrain']} "
              f"({result['reason'][:90]})", flush=True)  # fmt: skip
        when += timedelta(days=7)
    paths = plot(settings, model)
    IMAGES.mkdir(parents=True, exist_ok=True)
    image = IMAGES / f"drift_{model}_{source}{'_before' if mode == 'before' else ''}.png"
    shutil.copyfile(paths["png"], image)
    return summarise(model, source, mode, weeks, trainings, str(image.relative_to(ROOT)))


def summarise(model, source, mode, weeks, trainings, image) -> dict:
    judged = [w for w in weeks if (w.get("performance") or {}).get("judged")]
    in_band = [w for w in judged if not w["performance"]["dropped"]]
    retrained_in_band = [w for w in in_band if w["retrain"]]
    reasons: dict[str, int] = {}
    for week in weeks:
        if week["retrain"]:
            kind = week["reason"].split(":")[0].split(" (")[0]
            reasons[kind] = reasons.get(kind, 0) + 1
    return {
        "model": model,
        "source": source,
        "mode": mode,
        "weeks": len(weeks),
        "drifted_weeks": sum(w["drift"] for w in weeks),
        "retrains": sum(w["retrain"] for w in weeks),
        "retrain_reasons": reasons,
        "judged_weeks": len(judged),
        "in_band_weeks": len(in_band),
        "dropped_weeks": len(judged) - len(in_band),
        "retrain_rate": (len(retrained_in_band) / len(in_band)) if in_band else None,
        "trainings": trainings,
        "columns": _column_counts(weeks),
        "image": image,
        "per_week": weeks,
    }


def _column_counts(weeks: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for week in weeks:
        for column in week["drifted_columns"] or (["volume"] if week["drift"] else []):
            counts[column] = counts.get(column, 0) + 1
    return counts


def markdown(rows: list[dict]) -> str:
    lines = [
        "# Monitoring timelines of the real replays (weekly intervals)",
        "",
        "before: fixed thresholds, one drifted column confirms drift, drift retrains, each week "
        "against the 28 days before it (no champion). after: thresholds calibrated on the "
        "shop's own weeks, the data-set-level decision, a champion trained when the history "
        "allows and retrained when the monitor asks; drift alone is reported.",
        "",
        "| model | data | pass | weeks | drift confirmed | retrains (reasons) | judged weeks "
        "| below band | retrain_rate (in-band weeks) | columns that drifted (weeks) | plot |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        columns = ", ".join(
            f"{c} {n}" for c, n in sorted(r["columns"].items(), key=lambda x: -x[1])
        )
        reasons = ", ".join(f"{k} {n}" for k, n in r["retrain_reasons"].items()) or "-"
        rate = "-" if r["retrain_rate"] is None else f"{r['retrain_rate']:.1%}"
        lines.append(
            f"| {r['model']} | {r['source']} | {r['mode']} | {r['weeks']} | {r['drifted_weeks']} "
            f"| {r['retrains']} ({reasons}) | {r['judged_weeks']} | {r['dropped_weeks']} "
            f"| {rate} | {columns or '-'} | {r['image']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(REPLAYS), choices=list(REPLAYS))
    args = parser.parse_args()
    rows = [replay(model, mode) for model in args.models for mode in ("before", "after")]
    kept = RESULTS / "drift_replays.json"  # the models not replayed keep their last rows
    if kept.exists():
        earlier = json.loads(kept.read_text()).get("replays", [])
        rows = [r for r in earlier if r["model"] not in args.models and "mode" in r] + rows
    rows.sort(key=lambda r: (list(REPLAYS).index(r["model"]), r["mode"] != "before"))
    report = {"machine": machine(), "replays": rows}
    write_results("drift_replays", report, markdown(rows))


if __name__ == "__main__":
    main()
