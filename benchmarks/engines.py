"""The data stage on each engine: DuckDB in the process vs Apache Spark (local[*]), same machine,
same run, on simulator interactions of growing size.

For each size (1M and 10M events by default; 50M with `--sizes 1000000 10000000 50000000`) a
simulated shop is generated and put through the ETL once, into its own data folder under
benchmarks/.work/engines/. Then, for each engine, two stages run, each in a fresh subprocess
with AISLE_ENGINE set:

    build   the feature tables of every day (features.pipeline.build_step), Spark's session start
            included: a scheduled task pays it too
    join    recommender_v1's point-in-time training set for every curated event, written to a
            parquet file (training.training_sets.write_joined_training_set; Feast's DuckDB or
            Spark offline store). The labels are a query over the curated files
            (features.labels.Labels): DuckDB runs it here, Spark where the data is, so on Spark
            neither the labels nor the joined rows pass through the driver

Each is timed around the stage only, and its peak memory is that of the driver's process tree:
the Python process and its children (Spark's JVM), their RSS summed every 0.2 s by a thread.
Spark's shuffle and spill files go to a scratch folder of the stage's own (SPARK_LOCAL_DIRS),
whose peak size is reported too (`peak_scratch_gb`) and which is removed after the stage. A
stage is stopped, and reported with the peak memory it had reached, when its processes hold
more than `--memory-limit-mb`, when the disk has less than `--disk-reserve-gb` free, or after
`--timeout` seconds.
The report states where the engines' lines cross (interpolated between sizes, or extrapolated
from the two largest where they do not cross within the run).

    .venv/bin/python benchmarks/engines.py                            # 1M and 10M events
    .venv/bin/python benchmarks/engines.py --sizes 20000 --days 14    # a smoke run
    .venv/bin/python benchmarks/engines.py --sizes 50000000 --days 28 --engines spark --stages join
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from common import ROOT, WORK, machine, provide_sources, write_results

ENGINES = ("duckdb", "spark")
STAGES = ("build", "join")
FLOW, SOURCE, SERVICE = "interactions", "simulator", "recommender_v1"
SAMPLE_S = 0.2
# every curated event is a label (the training_set benchmark's labels, as a query)
LABELS_SQL = 'SELECT DISTINCT user_id, item_id, "timestamp" AS event_timestamp FROM events'


def settings_for(events: int, days: int, engine: str = "duckdb") -> Any:
    from core.settings import get_settings

    simulator = {"events": events, "users": max(events // 100, 200), "days": days}
    return get_settings(
        data_dir=WORK / "engines" / f"{events}_{days}d",
        interactions_source=SOURCE,
        simulator=simulator,
        engine=engine,
    )


def curated_files(settings: Any) -> list[Any]:
    return sorted((settings.curated_dir / SOURCE / FLOW).glob("date=*/part-0.parquet"))


def interval(settings: Any) -> tuple[str, str]:
    start = date.fromisoformat(str(settings.simulator.get("start", "2024-01-01")))
    return start.isoformat(), (start + timedelta(days=settings.simulator["days"])).isoformat()


def prepare(events: int, days: int) -> None:
    """The simulated shop, landed and curated (once; a marker file remembers)."""
    from features.ingest import ingest

    settings = settings_for(events, days)
    marker = settings.data_dir / "curated" / ".engines-prepared"
    if marker.exists():
        return
    provide_sources(settings, SOURCE)
    ingest(FLOW, *interval(settings), settings)
    marker.touch()


# --- the peak memory of a process tree ------------------------------------------------------------


def tree_rss_mb(pid: int | None = None) -> float:
    """RSS of a process (this one by default) and all its descendants (Spark's JVM is a child
    of the driver)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:  # a child that ended between the listing and the read
            continue
    return total / 2**20


@contextmanager
def peak_tree_rss() -> Iterator[dict[str, float]]:
    """Samples tree_rss_mb every SAMPLE_S seconds while the block runs; yields {"peak_mb"}."""
    found = {"peak_mb": tree_rss_mb()}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_S):
            found["peak_mb"] = max(found["peak_mb"], tree_rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        stop.set()
        sampler.join()
        found["peak_mb"] = max(found["peak_mb"], tree_rss_mb())


# --- children: one stage on one engine, one JSON line --------------------------------------------


def child(events: int, days: int, engine: str, stage: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from features import store
    from features.pipeline import build_step
    from training.training_sets import write_joined_training_set

    settings = settings_for(events, days, engine)
    out: dict[str, Any] = {}
    if stage == "join":
        store.apply(settings)
    with peak_tree_rss() as memory:
        started = time.perf_counter()
        if stage == "build":
            built = build_step(FLOW, *interval(settings), settings)
            out["partitions"] = sum(built["partitions"].values())
        else:
            # the path that scales: on Spark the executors write the joined rows and this
            # process streams them into the file (the features never become a frame here)
            path = settings.data_dir / "training" / "engines" / f"{engine}.parquet"
            labels = store.Labels(LABELS_SQL, {"events": curated_files(settings)})
            write_joined_training_set(settings, labels, SERVICE, {"engine": engine}, path)
            out["rows"] = pq.ParquetFile(path).metadata.num_rows
        seconds = time.perf_counter() - started
    return out | {"seconds": round(seconds, 2), "peak_rss_mb": round(memory["peak_mb"], 1)}


def folder_gb(folder: Path) -> float:
    """The size of the files under `folder` (files that vanish while it is read count 0)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:
            continue
    return total / 2**30


def run_child(
    events: int, days: int, engine: str, stage: str, limits: argparse.Namespace
) -> dict[str, Any]:
    """One stage in a fresh process, stopped (and reported so) when its process tree holds more
    than `limits.memory_mb`, when the disk keeps less than `limits.disk_reserve_gb` free, or past
    `limits.timeout` seconds: memory is the limit being measured, the kernel's OOM killer would
    pick its victim anywhere on the machine, and a full disk stops everything on it."""
    import tempfile

    import psutil

    cmd = [sys.executable, __file__, "--child", str(events), str(days), engine, stage]
    scratch = WORK / "engines" / "scratch" / f"{events}-{engine}-{stage}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    env = {**os.environ, "AISLE_ENGINE": engine, "SPARK_LOCAL_DIRS": str(scratch)}
    started = time.monotonic()
    peak_mb, peak_scratch, checked = 0.0, 0.0, 0.0
    try:
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            process = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=ROOT, env=env)
            stopped, stopped_by = None, None
            while stopped is None and process.poll() is None:
                seconds = time.monotonic() - started
                held = tree_rss_mb(process.pid)
                peak_mb = max(peak_mb, held)
                if seconds - checked >= 2:  # walking the scratch folder costs more than RSS
                    checked = seconds
                    peak_scratch = max(peak_scratch, folder_gb(scratch))
                    free_gb = shutil.disk_usage(scratch).free / 2**30
                    if free_gb < limits.disk_reserve_gb:
                        stopped_by = "disk"
                        stopped = f"stopped with {free_gb:.1f} GB of disk left (Spark's scratch "
                        stopped += f"held {peak_scratch:.1f} GB), after {seconds:.0f} s"
                if held > limits.memory_mb:
                    stopped_by = "memory"
                    stopped = f"stopped at {held:,.0f} MB, over the {limits.memory_mb:,.0f} MB "
                    stopped += f"limit, after {seconds:.0f} s"
                elif seconds > limits.timeout:
                    stopped_by = "time"
                    stopped = f"did not finish within {limits.timeout} s"
                time.sleep(SAMPLE_S)
            if stopped:
                root = psutil.Process(process.pid)
                for each in [*root.children(recursive=True), root]:
                    each.kill()
                process.wait()
                return {
                    "error": stopped,
                    "stopped_by": stopped_by,
                    "peak_rss_mb_at_least": round(peak_mb),
                    "peak_scratch_gb": round(peak_scratch, 1),
                }
            out.seek(0), err.seek(0)
            stdout, stderr = out.read(), err.read()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # a killed JVM leaves its shuffle files
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        return {"error": f"exit {process.returncode}: {stderr.strip()[-600:]}"}
    return json.loads(lines[-1]) | {"peak_scratch_gb": round(peak_scratch, 1)}


# --- parent: prepare, run, report ----------------------------------------------------------------


def stopped_by(row: dict[str, Any]) -> str | None:
    """Why a stage was stopped: memory, disk or time (rows from before the field: memory)."""
    return row.get("stopped_by", "memory" if "peak_rss_mb_at_least" in row else None)


def crossing(rows: list[dict[str, Any]], stage: str, metric: str) -> str:
    """Where Spark's line crosses DuckDB's for one stage and metric, in events."""
    by = {(r["engine"], r["events"]): r for r in rows if r["stage"] == stage and "error" not in r}
    sizes = sorted(n for n in {e for _, e in by} if ("duckdb", n) in by and ("spark", n) in by)
    beyond = sorted(
        r["events"]
        for r in rows
        if r["stage"] == stage and r["engine"] == "duckdb" and stopped_by(r) == "memory"
        and ("spark", r["events"]) in by
    )  # fmt: skip
    if beyond:  # DuckDB stopped over the memory limit where Spark finished
        ran = f"; both ran up to {sizes[-1]:,}" if sizes else ""
        return f"from {beyond[0]:,} events only Spark finishes (DuckDB over the memory limit){ran}"
    if not sizes:
        return "n/a (no size ran on both engines)"
    gap = [by["duckdb", n][metric] - by["spark", n][metric] for n in sizes]  # > 0: Spark lower
    if gap[0] > 0:
        return f"Spark already lower at the smallest size ({sizes[0]:,} events)"
    for i in range(len(sizes) - 1):
        (n0, n1), (g0, g1) = sizes[i : i + 2], gap[i : i + 2]
        if g0 <= 0 < g1:
            return f"≈ {n0 + (n1 - n0) * (-g0) / (g1 - g0):,.0f} events (between measured sizes)"
    if len(sizes) < 2:
        return f"no crossing at {sizes[0]:,} events (one size: no trend to extrapolate)"
    if gap[-1] <= gap[-2]:
        return f"no crossing up to {sizes[-1]:,} events, and the gap is not closing"
    n0, n1, g0, g1 = sizes[-2], sizes[-1], gap[-2], gap[-1]
    return f"≈ {n1 + (n1 - n0) * (-g1) / (g1 - g0):,.0f} events (extrapolated linearly)"


def crossings(results: list[dict[str, Any]]) -> dict[str, str]:
    return {
        f"{stage}: {what}": crossing(results, stage, metric)
        for stage in STAGES
        for what, metric in (("peak memory", "peak_rss_mb"), ("time", "seconds"))
    }


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# The data stage on DuckDB and on Spark (local[*])",
        "",
        f"Machine: {m['cpu_count']} CPUs, {m['memory_gb']} GB, Python {m['python']}. Simulator "
        f"interactions over {report['days']} days; one fresh process per row; peak RSS of the "
        f"driver's process tree (Python + JVM), sampled every {SAMPLE_S} s. Each row names the "
        "commit it was measured at (a run at new sizes keeps the rows of the others). Spark "
        "scratch: the peak size of the stage's shuffle and spill files (SPARK_LOCAL_DIRS; "
        "blank in rows measured before it was). A stage is stopped when its processes hold "
        "over 80 % of the memory or the disk runs low (≥: the peak it had reached).",
        "",
        "| engine | events | stage | seconds | peak RSS MB | Spark scratch GB | rows | commit |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in report["results"]:
        head = f"| {r['engine']} | {r['events']:,} | {r['stage']} |"
        commit = r.get("commit", m["git_commit"][:10])
        scratch = r.get("peak_scratch_gb", "") if r["engine"] == "spark" else ""
        if "error" in r:
            held = r.get("peak_rss_mb_at_least")
            lines.append(
                f"{head} failed: {r['error'][-160:]} | {f'≥ {held:,}' if held else ''} | "
                f"{scratch} | | {commit} |"
            )
            continue
        rows = r.get("rows", r.get("partitions", ""))
        lines.append(
            f"{head} {r['seconds']:.1f} | {r['peak_rss_mb']:,.0f} | {scratch} | {rows:,} | "
            f"{commit} |"
        )
    lines += ["", "| where the lines cross | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["crossings"].items()]
    return "\n".join(lines) + "\n"


def kept_results(
    days: int, sizes: list[int], engines: list[str], stages: list[str]
) -> list[dict[str, Any]]:
    """The last report's rows of the sizes, engines and stages not run now (the same days of
    history): a run at a new size adds its rows to the table rather than replacing it."""
    from common import RESULTS

    path = RESULTS / "engines.json"
    if not path.exists():
        return []
    last = json.loads(path.read_text())
    if last.get("days") != days:
        return []
    commit = last["machine"]["git_commit"][:10]
    kept = [
        r
        for r in last["results"]
        if r["events"] not in sizes or r["engine"] not in engines or r["stage"] not in stages
    ]
    return [{"commit": commit} | r for r in kept]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", nargs="+", type=int, default=[1_000_000, 10_000_000])
    p.add_argument("--days", type=int, default=182, help="the simulated shop's history")
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    p.add_argument(
        "--stages",
        nargs="+",
        default=list(STAGES),
        choices=STAGES,
        help="the join reads the tables a build wrote: run it alone only after one",
    )
    p.add_argument("--timeout", type=int, default=3600, help="seconds per stage")
    p.add_argument(
        "--memory-limit-mb",
        type=float,
        default=None,
        help="stop a stage whose processes hold more (default: 80%% of this machine's memory)",
    )
    p.add_argument(
        "--disk-reserve-gb",
        type=float,
        default=5.0,
        help="stop a stage when the disk has less free (Spark's shuffle files can fill it)",
    )
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--render", action="store_true", help="rewrite the report from its JSON only")
    args = p.parse_args(argv)
    if args.render:
        from common import RESULTS

        report = json.loads((RESULTS / "engines.json").read_text())
        report["crossings"] = crossings(report["results"])
        write_results("engines", report, markdown(report))
        return
    if args.child:
        events, days, engine, stage = args.child
        print(json.dumps(child(int(events), int(days), engine, stage)))
        return

    import psutil

    args.memory_mb = args.memory_limit_mb or 0.8 * psutil.virtual_memory().total / 2**20
    commit = machine()["git_commit"][:10]
    results = []
    for events in args.sizes:
        print(f"preparing {events:,} events ...", flush=True)
        prepare(events, args.days)
        for engine in args.engines:
            for stage in [s for s in STAGES if s in args.stages]:  # the build before the join
                print(f"  {engine} {stage} ...", flush=True)
                row = {"engine": engine, "events": events, "stage": stage, "commit": commit}
                row |= run_child(events, args.days, engine, stage, args)
                results.append(row)
                print(f"    {row}", flush=True)
    results = kept_results(args.days, args.sizes, args.engines, args.stages) + results
    results.sort(key=lambda r: (r["events"], ENGINES.index(r["engine"]), STAGES.index(r["stage"])))
    report = {
        "machine": machine(),
        "days": args.days,
        "results": results,
        "crossings": crossings(results),
    }
    write_results("engines", report, markdown(report))


if __name__ == "__main__":
    main()
