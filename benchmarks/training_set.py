"""Point-in-time training sets: time and peak memory, Feast's DuckDB vs its file offline store.

Three inputs, each put through the ETL and the features stage into its own data folder under
benchmarks/.work/training_set/:

    movielens    recommender_v1 for every rating of MovieLens-100k (100,000 labels)
    orange_juice pricing_v1 for every store x brand x week of Dominick's OJ (106,139 labels)
    sim10m       recommender_v1 for every event of a 10,000,000-event simulated shop

Each (input, offline store) pair runs `features.store.training_set` in a fresh subprocess, so its
peak RSS (ru_maxrss) is its own; a run that fails or passes --timeout is reported as such. The
ratio file ÷ duckdb of time and memory decides the local default (AISLE_FEAST_OFFLINE_STORE).

    .venv/bin/python benchmarks/training_set.py [--inputs movielens orange_juice sim10m]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from common import RESULTS, ROOT, WORK, machine, provide_sources, write_results

INPUTS = {
    # name: (flow, source, first day, end, service, simulator settings)
    "movielens": ("interactions", "movielens", "1997-09-01", "1998-05-01", "recommender_v1", {}),
    "orange_juice": ("sales", "orange_juice", "1989-09-14", "1992-10-15", "pricing_v1", {}),
    "sim10m": (
        "interactions",
        "simulator",
        "2024-01-01",
        "2024-07-02",
        "recommender_v1",
        {"events": 10_000_000, "users": 100_000},
    ),
}
STORES = ("duckdb", "file")


def settings_for(name: str, offline: str = "duckdb") -> Any:
    from core.settings import get_settings

    flow, source, *_, simulator = INPUTS[name]
    return get_settings(
        data_dir=WORK / "training_set" / name,
        **{f"{flow}_source": source},
        simulator=simulator,
        feast_offline_store=offline,
    )


def prepare(name: str) -> None:
    """ETL and feature tables for the input's whole timeline (once; a marker file remembers)."""
    from features.ingest import ingest, ingest_attributes
    from features.pipeline import build_step
    from features.storage import Interval

    flow, source, first, end, *_ = INPUTS[name]
    settings = settings_for(name)
    marker = settings.data_dir / "features" / ".built"
    if marker.exists():
        return
    provide_sources(settings, source)
    if flow == "sales":  # attribute snapshots known from the first week on
        before = Interval.parse("1989-09-07", first)
        ingest_attributes(flow, before.start, before.end, settings)
    ingest(flow, first, end, settings)
    build_step(flow, first, end, settings)
    if flow == "sales":
        build_step(flow, "1989-09-07", first, settings)  # the store snapshot dated `first`
    marker.touch()


def labels(name: str) -> Any:
    """Every curated event (or sales week) of the input, as an entity frame."""
    flow, source, *_ = INPUTS[name]
    return entity_frame(settings_for(name), flow, source)


def entity_frame(settings: Any, flow: str, source: str) -> Any:
    """The curated events (or sales weeks) of a data folder as a training set's entity frame
    (also benchmarks/engines.py's labels)."""
    import pandas as pd
    import pyarrow.dataset as ds

    files = sorted((settings.curated_dir / source / flow).glob("date=*/part-0.parquet"))
    if flow == "interactions":
        table = ds.dataset(files).to_table(columns=["user_id", "item_id", "timestamp"])
        frame = table.to_pandas().rename(columns={"timestamp": "event_timestamp"})
        return frame.drop_duplicates(["user_id", "item_id", "event_timestamp"])
    table = ds.dataset(files).to_table(columns=["item_id", "store_id", "week_start"])
    frame = table.to_pandas()
    frame["event_timestamp"] = pd.to_datetime(frame.pop("week_start"), utc=True)
    return frame


def child(name: str, offline: str) -> dict[str, Any]:
    from features import store

    service = INPUTS[name][4]
    entity_df = labels(name)
    settings = settings_for(name, offline)
    store.apply(settings)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    frame = store.training_set(settings, entity_df, service=service)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "labels": len(entity_df),
        "rows": len(frame),
        "complete": len(frame) == len(entity_df),  # a point-in-time join keeps every label
        "columns": frame.shape[1],
        "seconds": seconds,
        "peak_rss_mb": peak,
        "peak_before_mb": baseline,
    }


def run_child(name: str, offline: str, timeout: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", name, offline]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-400:]}"}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    p.add_argument("--stores", nargs="+", default=list(STORES), choices=list(STORES))
    p.add_argument("--timeout", type=int, default=1200)
    p.add_argument("--report-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child", nargs=2, metavar=("INPUT", "STORE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return

    results = []
    if args.report_only:  # re-render the last results (e.g. after changing the table)
        report = json.loads((RESULTS / "training_set.json").read_text())
        report["ratios"] = ratios(report["results"])
        write_results("training_set", report, markdown(report))
        return
    for name in args.inputs:
        print(f"preparing {name} ...", flush=True)
        prepare(name)
        for offline in args.stores:
            print(f"  {name} on {offline} ...", flush=True)
            results.append(
                {"input": name, "store": offline, **run_child(name, offline, args.timeout)}
            )
            print(f"    {results[-1]}", flush=True)
    # Runs of other inputs or stores from an earlier invocation are kept (a partial rerun).
    previous = RESULTS / "training_set.json"
    if previous.exists():
        ran = {(r["input"], r["store"]) for r in results}
        kept = [
            r
            for r in json.loads(previous.read_text())["results"]
            if (r["input"], r["store"]) not in ran
        ]
        results = sorted(kept + results, key=lambda r: (list(INPUTS).index(r["input"]), r["store"]))
    report = {"machine": machine(), "results": results, "ratios": ratios(results)}
    write_results("training_set", report, markdown(report))


def ratios(results: list[dict[str, Any]]) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    by = {(r["input"], r["store"]): r for r in results}
    for name in {r["input"] for r in results}:
        duck, file = by.get((name, "duckdb")), by.get((name, "file"))
        if not duck or not file:
            continue
        if "error" in duck or "error" in file:
            out[f"{name} file ÷ duckdb"] = "n/a (a run failed)"
            continue
        if not file.get("complete", True):
            out[f"{name} file store"] = (
                f"lost {duck['rows'] - file['rows']:,} of {duck['rows']:,} labels"
            )
        out[f"{name} time file ÷ duckdb"] = round(file["seconds"] / duck["seconds"], 2)
        out[f"{name} peak RSS file ÷ duckdb"] = round(file["peak_rss_mb"] / duck["peak_rss_mb"], 2)
    return out


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Training sets: Feast DuckDB offline store vs file store",
        "",
        f"Machine: {m['cpu_count']} CPUs, {m['memory_gb']} GB, Python {m['python']}, "
        f"commit {m['git_commit'][:10]}. One fresh process per run.",
        "",
        "| input | store | labels | rows returned | seconds | labels/s | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"| {r['input']} | {r['store']} | | failed: {r['error'][-160:]} | | | |")
            continue
        labels = r.get("labels", r["rows"])
        returned = f"{r['rows']:,}" + ("" if r["rows"] == labels else " (**rows lost**)")
        lines.append(
            f"| {r['input']} | {r['store']} | {labels:,} | {returned} | {r['seconds']:.1f} | "
            f"{labels / r['seconds']:,.0f} | {r['peak_rss_mb']:,.0f} |"
        )
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(report["ratios"].items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
