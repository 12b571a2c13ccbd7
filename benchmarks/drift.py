"""Drift detection on the shop simulator (the full table), and the drift check's cost at a
million rows against plain scipy tests on the same columns, in the same run.

    .venv/bin/python benchmarks/drift.py [--windows 100] [--seeds 202] [--rows 1000000]

1. **Detection** (monitoring/simulation.py): per knob, `--windows` clean and shifted daily windows
   per seed, checked with the configured methods and thresholds (AISLE_DRIFT__*). The
   per-column thresholds were chosen on validation seed 101 only; the table is on other seeds.
2. **Cost**: 1,000,000 reference and 1,000,000 current rows x 20 numerical columns (one column
   shifted by 0.2 sd). Each case runs in a fresh process, so its peak memory (ru_maxrss) is its
   own: the Aisle check (one Evidently ValueDrift per column, normed Wasserstein, the default),
   the same check with KS, Evidently's DataDriftPreset, and scipy.stats.ks_2samp per column (the
   reference). The two data frames alone take ~0.45 GB of each peak.
Results: benchmarks/results/drift.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchmarks.common import machine, write_results  # noqa: E402

COLUMNS = [f"f{n}" for n in range(20)]
CASES = {
    "aisle check (ValueDrift per column, wasserstein)": "aisle",
    "aisle check with KS": "aisle-ks",
    "Evidently DataDriftPreset (defaults)": "preset",
    "scipy.stats.ks_2samp per column (reference)": "scipy",
}


def frames(rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(0, 1, (rows, 20)).astype("float64"), columns=COLUMNS)
    current = pd.DataFrame(rng.normal(0, 1, (rows, 20)).astype("float64"), columns=COLUMNS)
    current["f0"] += 0.2
    return reference, current


def one_case(mode: str, rows: int) -> dict:
    """Runs in its own process: time and peak memory of one way of checking the 20 columns."""
    reference, current = frames(rows)
    started = time.perf_counter()
    if mode == "scipy":
        from scipy.stats import ks_2samp

        drifted = [c for c in COLUMNS if ks_2samp(reference[c], current[c]).pvalue < 0.05]
    elif mode == "preset":
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        definition = DataDefinition(numerical_columns=COLUMNS)
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        drifted = int(snapshot.dict()["metrics"][0]["value"]["count"])
    else:
        from core.settings import DriftPolicy
        from monitoring.drift import check_drift

        method = "ks" if mode == "aisle-ks" else "wasserstein"
        policy = DriftPolicy(
            numerical_method=method, numerical_threshold=0.05 if method == "ks" else 0.1
        )
        result, _ = check_drift(current, reference, COLUMNS, [], policy)
        drifted = result.drifted_columns
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": round(seconds, 2), "peak_mb": round(peak_mb), "drifted": drifted}


def cost(rows: int) -> list[dict]:
    out = []
    for name, mode in CASES.items():
        done = subprocess.run(
            [sys.executable, __file__, "--case", mode, "--rows", str(rows)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        out.append({"case": name, **json.loads(done.stdout.strip().splitlines()[-1])})
        print(out[-1], flush=True)
    reference = out[-1]
    for row in out:
        row["time_vs_scipy"] = round(row["seconds"] / reference["seconds"], 1)
        row["memory_vs_scipy"] = round(row["peak_mb"] / reference["peak_mb"], 2)
    return out


def detection(seeds: list[int], windows: int) -> list[dict]:
    from core.settings import get_settings
    from monitoring.simulation import detection_table

    done = {"n": 0}

    def progress(knob, day, result) -> None:
        done["n"] += 1
        if done["n"] % 50 == 0:
            print(f"  {done['n']} windows checked (last: {knob} {day})", flush=True)

    scores = detection_table(seeds, windows, get_settings().drift, progress)
    return [s.to_dict() for s in scores.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[202])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(args.case, args.rows), default=str))
        return
    table = detection(args.seeds, args.windows)
    for row in table:
        print(row, flush=True)
    costs = cost(args.rows)
    report = {
        "machine": machine(),
        "seeds": args.seeds,
        "windows": args.windows,
        "detection": table,
        "rows": args.rows,
        "cost": costs,
    }
    write_results("drift", report, markdown(table, costs, args))


def markdown(table: list[dict], costs: list[dict], args) -> str:
    lines = [
        f"# Drift detection on the simulator (seeds {args.seeds}, {args.windows} clean and up to "
        f"{args.windows} shifted daily windows per knob and seed)",
        "",
        "| knob | detected / shifted | detection | false alarms / clean | false alarms "
        "| delay (days) | columns that fired |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table:
        fired = ", ".join(
            f"{c} {n}" for c, n in sorted(r["columns_fired"].items(), key=lambda x: -x[1])
        )
        lines.append(
            f"| {r['knob']} | {r['detected']} / {r['shifted_windows']} | {r['detection_rate']:.1%} "
            f"| {r['false_alarms']} / {r['clean_windows']} | {r['false_alarm_rate']:.1%} "
            f"| {r['delay_days']} | {fired} |"
        )
    lines += [
        "",
        f"# Cost of one check: {args.rows:,} reference + {args.rows:,} current rows x 20 "
        "numerical columns, each case in its own process",
        "",
        "| case | seconds | peak MB | time ÷ scipy | memory ÷ scipy | drifted |",
        "|---|---|---|---|---|---|",
    ]
    for r in costs:
        lines.append(
            f"| {r['case']} | {r['seconds']} | {r['peak_mb']} | {r['time_vs_scipy']} "
            f"| {r['memory_vs_scipy']} | {r['drifted']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
