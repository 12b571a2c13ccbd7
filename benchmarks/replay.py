"""Whole timelines through Airflow: every interval of MovieLens-100k (weekly) and of Dominick's
orange juice (weekly from Thursday) as its own `ingest_<flow>` DAG run, each followed by a
`features` run, against the same span ingested and featurised in one call of the same steps
(what `aisle demo` bootstraps its history with).

    .venv/bin/python benchmarks/replay.py [--flows interactions sales]

The test suite replays a few intervals of each (tests/integration/test_replay.py); this is the
whole of both, with the same reconciliation: every source row of the timeline went through the
ETL once (rows in = the source's rows), curated + quarantined + duplicates = rows in, one
feature partition per curated partition. A mismatch fails the run. The ratio is the price of
one Airflow run per interval: replay seconds / one-call seconds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parents[1])
from benchmarks.common import WORK, machine, provide_sources, write_results  # noqa: E402

FLOWS = {
    # flow: (schedule, data set)
    "interactions": ("@weekly", "movielens"),
    "sales": ("0 0 * * 4", "orange_juice"),
}


def fresh_settings(flow: str, name: str) -> Any:
    from core.settings import get_settings

    schedule, dataset = FLOWS[flow]
    folder = WORK / "replay" / f"{flow}-{name}" / "data"
    shutil.rmtree(folder.parent, ignore_errors=True)
    settings = get_settings(data_dir=folder, **{f"{flow}_schedule": schedule})
    provide_sources(settings, dataset)
    return settings


def reconcile(settings: Any, flow: str, start: Any, end: Any) -> dict[str, Any]:
    """The counts of the zones against the source, for the span [start, end)."""
    import pandas as pd

    from aisle import replay
    from features.feature_tables import feature_dir
    from features.summary import zone_summary

    _, dataset = FLOWS[flow]
    totals = {(t.dataset, t.table): t for t in zone_summary(settings)}
    events = totals[(dataset, flow)]
    source = replay.source_rows(settings, flow, start, end)
    curated = sorted((settings.curated_dir / dataset / flow).glob("date=*/part-0.parquet"))
    table = {"interactions": "user_activity", "sales": "item_price"}[flow]
    features = list(feature_dir(settings, dataset, table).glob("date=*/part-0.parquet"))
    with_rows = [p for p in curated if pd.read_parquet(p).size]
    expected = len(curated) if flow == "interactions" else len(with_rows)
    found = {
        "source_rows": source,
        "rows_in": events.rows_in,
        "curated": events.curated,
        "quarantined": events.quarantined,
        "duplicates": events.duplicates,
        "feature_partitions": len(features),
        "expected_feature_partitions": expected,
    }
    problems = []
    if events.rows_in != source:
        problems.append(f"rows in {events.rows_in} != source rows {source}")
    if events.curated + events.quarantined + events.duplicates != events.rows_in:
        problems.append("curated + quarantined + duplicates != rows in")
    if len(features) != expected:
        problems.append(f"{len(features)} feature partitions, {expected} expected")
    if problems:
        raise SystemExit(f"{flow}: the replay does not reconcile: {'; '.join(problems)}")
    return found


def run_flow(flow: str) -> dict[str, Any]:
    from aisle import replay
    from features.ingest import ingest
    from features.pipeline import run_features

    settings = fresh_settings(flow, "airflow")
    planned = replay.plan(settings, flow)
    start, end = planned[0].start, planned[-1].end
    clock = time.perf_counter()
    log = settings.data_dir / "replay.log"
    with replay.output_to(log) as terminal:  # Airflow's task logs go to the file
        runs = replay.replay(
            settings, flow, on_run=lambda r: print(f"{flow} {r.interval.key}", file=terminal)
        )
    replay_s = time.perf_counter() - clock
    replayed = reconcile(settings, flow, start, end)

    once = fresh_settings(flow, "one-call")
    clock = time.perf_counter()
    ingest(flow, start, end, once)
    run_features(flow, start, end, once)
    one_call_s = time.perf_counter() - clock
    return {
        "flow": flow,
        "dataset": FLOWS[flow][1],
        "intervals": len(runs),
        "replay_s": round(replay_s, 1),
        "one_call_s": round(one_call_s, 1),
        "ratio": round(replay_s / one_call_s, 2),
        "seconds_per_run": round(replay_s / len(runs), 2),
        "counts": replayed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", nargs="+", choices=sorted(FLOWS), default=list(FLOWS))
    args = parser.parse_args()
    rows = [run_flow(flow) for flow in args.flows]
    lines = [
        "# Whole timelines through Airflow: one ingest + features run per interval",
        "",
        "| flow | data set | intervals | replay s | s per interval | one call s | ratio |"
        " source rows | rows in | curated | quarantined | duplicates |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["counts"]
        lines.append(
            f"| {r['flow']} | {r['dataset']} | {r['intervals']} | {r['replay_s']} |"
            f" {r['seconds_per_run']} | {r['one_call_s']} | {r['ratio']} | {c['source_rows']} |"
            f" {c['rows_in']} | {c['curated']} | {c['quarantined']} | {c['duplicates']} |"
        )
    lines += [
        "",
        "Every row reconciles (rows in = source rows; curated + quarantined + duplicates = rows"
        " in; a feature partition per curated one). Ratio: the replay's seconds over the same"
        " span ingested and featurised in one call of the same steps.",
    ]
    write_results("replay", {"machine": machine(), "flows": rows}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
