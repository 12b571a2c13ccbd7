"""ETL throughput and peak memory on simulated interaction files, against plain pandas.

For each size, one CSV of simulator events (as a shop export looks) is landed once; then each
measurement runs in a fresh subprocess, so its peak RSS is its own:

    etl        features.etl.run_etl over the landed file (parse, validate, dedup, curated days)
    bad        run_etl over the same file with every row broken (an unknown event type and a
               negative price): every row quarantined, the path a bad export takes; its ratio
               to `etl` is the price of rejecting (target: within 2x)
    reference  pandas.read_csv(path).to_parquet(out), the same file: "the price of validation"

Files above 1M events are ten (or more) 1M-event shops with their own seeds, one after another in
time, so the day density stays that of a real shop and the file grows with its history.

    .venv/bin/python benchmarks/etl.py                      # 1M and 10M events
    .venv/bin/python benchmarks/etl.py --quick              # 100k and 1M
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from common import ROOT, WORK, machine, write_results

CHUNK_EVENTS = 1_000_000  # events per simulated shop; larger files are several shops in a row
CHUNK_DAYS = 182
# How the bad file breaks every row: two rules at once, so each row also carries two reasons.
BAD_ROW = {"event_type": "wishlist", "price": "-1"}
BAD_REASONS = "unknown_event_type; price_not_positive"
KINDS = ("etl", "bad", "reference")


# --- children: each runs one measurement and prints one JSON line --------------------------------


def child(kind: str, csv: Path, meta: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    import pandas as pd
    import psutil
    import pyarrow.parquet  # noqa: F401  (imported before the baseline, as run_etl's are)

    from core.settings import get_settings
    from features.etl import run_etl
    from features.storage import Interval

    out: dict[str, Any] = {}
    baseline = psutil.Process().memory_info().rss / 2**20  # after imports, before work
    started = time.perf_counter()
    if kind == "reference":
        pd.read_csv(csv).to_parquet(data_dir / "reference.parquet")
    else:
        settings = get_settings(data_dir=data_dir)
        interval = Interval.parse(meta["first_day"], meta["end_day"])
        dataset = meta["bad_dataset"] if kind == "bad" else meta["dataset"]
        s = run_etl(settings, dataset, "interactions", interval)
        assert s.rows_in == s.curated + s.quarantined + s.duplicates, s
        assert kind != "bad" or s.quarantined == s.rows_in, s
        counts = ("rows_in", "curated", "quarantined", "duplicates")
        out["summary"] = {k: getattr(s, k) for k in counts} | {
            "curated_partitions": len(s.curated_partitions),
            "etl_block_mb": settings.etl_block_mb,
        }
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return out | {"seconds": seconds, "peak_mb": peak, "baseline_mb": baseline}


# --- parent: generate, land, run children, report ------------------------------------------------


def generate(size: int, work: Path) -> tuple[Path, dict[str, Any]]:
    """Write (once) a CSV of about `size` simulator events; return it and its metadata."""
    csv, meta_path = work / f"events_{size}.csv", work / f"events_{size}.json"
    if csv.exists() and meta_path.exists():
        return csv, json.loads(meta_path.read_text())
    from features.landing import write_csv
    from features.sources.simulator import SimulatorConfig, simulate

    work.mkdir(parents=True, exist_ok=True)
    tmp, part = csv.with_suffix(".tmp"), csv.with_suffix(".part")
    rows, first, last = 0, None, None
    with tmp.open("wb") as sink:
        for k in range(max(1, round(size / CHUNK_EVENTS))):
            # In the past: the ETL quarantines events after the run as "in the future".
            start = date(2019, 1, 7) + timedelta(days=k * CHUNK_DAYS)
            config = SimulatorConfig(
                events=min(size, CHUNK_EVENTS), seed=k, start=start, days=CHUNK_DAYS
            )
            frame = simulate(config).interactions
            rows += len(frame)
            first = first or frame["timestamp"].min().date()
            last = frame["timestamp"].max().date()
            write_csv(frame, part)
            with part.open("rb") as source:
                if k:
                    source.readline()  # one header for the whole file
                shutil.copyfileobj(source, sink)
            del frame
    part.unlink()
    tmp.replace(csv)
    assert first is not None and last is not None
    meta = {"rows": rows, "first_day": str(first), "end_day": str(last + timedelta(days=1))}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return csv, meta


def break_every_row(csv: Path) -> Path:
    """Write (once) the same events with every row broken (BAD_ROW), streamed in blocks."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad = csv.with_name(f"{csv.stem}_bad.csv")
    if bad.exists():
        return bad
    tmp = bad.with_suffix(".tmp")
    with csv.open("rb") as handle:
        header = handle.readline()
    # Every column read and written as the text it was: only the broken fields change.
    names = header.decode().strip().split(",")
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    reader = pacsv.open_csv(csv, convert_options=convert)
    options = pacsv.WriteOptions(quoting_style="none", include_header=False)
    tmp.write_bytes(header)
    with (
        tmp.open("ab") as sink,
        pacsv.CSVWriter(sink, reader.schema, write_options=options) as writer,
    ):
        for batch in reader:
            columns = {
                name: pa.array([BAD_ROW[name]] * batch.num_rows, pa.string())
                if name in BAD_ROW
                else batch.column(name)
                for name in batch.schema.names
            }
            writer.write_batch(pa.RecordBatch.from_pydict(columns, schema=reader.schema))
    tmp.replace(bad)
    return bad


def land_file(csv: Path, meta: dict[str, Any], data_dir: Path) -> str:
    from core.settings import get_settings
    from features.landing import land
    from features.storage import Interval

    interval = Interval.parse(meta["first_day"], meta["end_day"])
    return land(get_settings(data_dir=data_dir), "interactions", interval, str(csv)).dataset


def run_child(kind: str, csv: Path, meta: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    for zone in ("curated", "quarantine", "runs"):  # a clean slate for every repeat
        shutil.rmtree(data_dir / zone, ignore_errors=True)
    (data_dir / "reference.parquet").unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", kind, "--csv", str(csv), "--workdir", str(data_dir)]
    cmd += ["--meta", json.dumps(meta)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{kind} child failed on {csv}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    seconds = statistics.median(r["seconds"] for r in runs)
    peak = statistics.median(r["peak_mb"] for r in runs)
    growth = statistics.median(r["peak_mb"] - r["baseline_mb"] for r in runs)
    return {
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": round(peak, 1),
        "peak_minus_baseline_mb": round(growth, 1),
        "baseline_rss_mb": round(statistics.median(r["baseline_mb"] for r in runs), 1),
        "runs_seconds": [round(r["seconds"], 3) for r in runs],
        "runs_peak_rss_mb": [round(r["peak_mb"], 1) for r in runs],
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# ETL benchmark",
        "",
        f"Machine: {report['machine']['cpu_count']} CPUs, {report['machine']['memory_gb']} GB, "
        f"Python {report['machine']['python']}, pandas {report['machine']['pandas']}, "
        f"pyarrow {report['machine']['pyarrow']}. Medians of the repeats; reference = "
        "`pandas.read_csv(path).to_parquet(out)` on the same file.",
        "",
        f"`bad` = the same file with every row broken ({BAD_REASONS}): every row quarantined.",
        "",
        "| events | file MB | run | repeats | seconds | rows/s | peak RSS MB | peak-baseline MB |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for s in report["sizes"]:
        for what in KINDS:
            m = s[what]
            lines.append(
                f"| {s['rows']:,} | {s['file_mb']:,.0f} | {what} | {len(m['runs_seconds'])} | "
                f"{m['seconds']:.1f} | {m['rows_per_s']:,} | {m['peak_rss_mb']:,.0f} | "
                f"{m['peak_minus_baseline_mb']:,.0f} |"
            )
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in report["ratios"].items()]
    lines += ["", "| events | run | rows_in | curated | quarantined | duplicates | days |"]
    lines += ["|---:|---|---:|---:|---:|---:|---:|"]
    for s in report["sizes"]:
        for what in ("etl", "bad"):
            c = s[f"{what}_summary"]
            lines.append(
                f"| {s['rows']:,} | {what} | {c['rows_in']:,} | {c['curated']:,} | "
                f"{c['quarantined']:,} | {c['duplicates']:,} | {c['curated_partitions']:,} |"
            )
    lines += ["", "Reproduce with `.venv/bin/python benchmarks/etl.py` (see benchmarks/README.md)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--quick", action="store_true", help="sizes 100,000 and 1,000,000")
    p.add_argument("--repeats", type=int, help="default: 3 up to 1M events, 1 above")
    p.add_argument("--workdir", type=Path, default=WORK)
    p.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--meta", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.csv, json.loads(args.meta), args.workdir)))
        return

    from rich.console import Console
    from rich.progress import Progress

    console, sizes = Console(), sorted([100_000, 1_000_000] if args.quick else args.sizes)
    work = args.workdir.resolve()
    results: list[dict[str, Any]] = []
    with Progress(console=console) as progress:
        for size in sizes:
            repeats = args.repeats or (3 if size <= 1_000_000 else 1)
            task = progress.add_task(f"{size:,} events", total=1 + len(KINDS) * repeats)
            progress.update(task, description=f"{size:,} events: generating")
            csv, meta = generate(size, work)
            bad = break_every_row(csv)
            data_dir = work / f"data_{size}"
            meta["dataset"] = land_file(csv, meta, data_dir)
            meta["bad_dataset"] = land_file(bad, meta, data_dir)
            progress.advance(task)
            runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
            for i in range(repeats):
                for kind in KINDS:
                    progress.update(task, description=f"{size:,} events: {kind} {i + 1}/{repeats}")
                    runs[kind].append(run_child(kind, csv, meta, data_dir))
                    progress.advance(task)
            entry = {"rows": meta["rows"], "file_mb": round(csv.stat().st_size / 2**20, 1)}
            entry |= {kind: summarise(r, meta["rows"]) for kind, r in runs.items()}
            entry["etl_summary"] = runs["etl"][-1]["summary"]
            entry["bad_summary"] = runs["bad"][-1]["summary"]
            assert entry["etl_summary"]["rows_in"] == meta["rows"], entry
            assert entry["bad_summary"]["quarantined"] == meta["rows"], entry
            results.append(entry)
            progress.update(task, description=f"{size:,} events: done")

    small, large = results[0], results[-1]
    ratios = {
        f"slowdown {s['rows']:,} (reference rows/s ÷ etl rows/s)": round(
            s["reference"]["rows_per_s"] / s["etl"]["rows_per_s"], 3
        )
        for s in results
    }
    for s in results:  # the target: the quarantine path within 2x of the curated one
        label = f"quarantine path {s['rows']:,} (etl rows/s ÷ bad rows/s; target ≤ 2)"
        ratios[label] = round(s["etl"]["rows_per_s"] / s["bad"]["rows_per_s"], 3)
    if len(results) > 1:
        for what in KINDS:
            for key in ("peak_rss_mb", "peak_minus_baseline_mb"):
                label = f"{what} {key} {large['rows']:,} ÷ {small['rows']:,}"
                ratios[label] = round(large[what][key] / small[what][key], 3)
    report = {
        "machine": machine(),
        "bad_file": {"every_row": BAD_ROW, "reasons": BAD_REASONS},
        "sizes": results,
        "ratios": ratios,
    }
    write_results("etl", report, markdown(report))


if __name__ == "__main__":
    main()
