"""Drift detection on the shop simulator (the full table), and the drift check's cost at a
million rows against plain scipy tests on the same columns, in the same run.

    .venv/bin/python benchmarks/drift.py [--windows 100] [--seeds 202] [--rows 1000000]
        [--parts detection performance cost]

1. **Detection** (monitoring/simulation.py): per knob, `--windows` clean and shifted daily windows
   per seed, checked with the configured methods and thresholds (AISLE_DRIFT__*). The
   per-column thresholds were chosen on validation seed 101 only; the table is on other seeds.
2. **A performance drop** (`performance_drop`): a simulated shop of 56 days whose tastes shift
   on day 42 (strength 0.5, the taste_shift knob), and the same shop without the shift. A
   champion is trained by the training DAG's stages on the data up to day 35 and frozen; every
   day from 35 to 56 is checked by the drift check's code path (drift_check_step: calibrated
   drift and the champion's realised NDCG@10 against its band). Reported: the days until the
   first drop after the shift (the target: within two intervals), drops on shifted days, and
   false drops on the clean shop's days.
3. **Cost**: 1,000,000 reference and 1,000,000 current rows x 20 numerical columns (one column
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
from benchmarks.common import (  # noqa: E402
    WORK,
    machine,
    provide_sources,
    train_and_crown,
    write_results,
)

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


PERFORMANCE_SHOP = {"start": "2024-01-01", "days": 56, "shift_day": 42, "champion_day": 35}


def performance_drop(seed: int, shifted: bool) -> dict:
    """A champion frozen at day 35 of a simulated shop; each later day's realised NDCG@10
    against its band, with or without the taste shift on day 42."""
    import shutil
    from datetime import date, timedelta

    from core.settings import get_settings
    from features.ingest import ingest
    from features.pipeline import run_features
    from monitoring.monitor import drift_check_step

    shop = PERFORMANCE_SHOP
    first = date.fromisoformat(shop["start"])
    last = first + timedelta(days=shop["days"])
    shift_at = first + timedelta(days=shop["shift_day"])
    name = f"seed{seed}-{'shifted' if shifted else 'clean'}"
    folder = WORK / "drift_performance" / name / "data"
    shutil.rmtree(folder.parent, ignore_errors=True)
    drift = {"taste_shift_at": shift_at.isoformat(), "taste_shift_strength": 0.5}
    settings = get_settings(
        data_dir=folder,
        interactions_source="simulator",
        recommender_valid_days=7,
        recommender_test_days=7,
        simulator={"seed": seed, "events": 3_000 * shop["days"], "users": 5_000,
                   "items": 2_000, "days": shop["days"], "drift": drift if shifted else {}},
    )  # fmt: skip
    provide_sources(settings, "simulator")
    ingest("interactions", first, last, settings)
    run_features("interactions", first, last, settings)
    champion_end = first + timedelta(days=shop["champion_day"])
    trained = train_and_crown(settings, "recommender", champion_end)
    days = []
    day = champion_end
    while day < last:
        record = drift_check_step("recommender", day, day + timedelta(days=1), settings)
        performance = record["performance"] or {}
        days.append({
            "day": day.isoformat(),
            "after_shift": shifted and day >= shift_at,
            "drift": record["drift"],
            "drifted_columns": record["drifted_columns"],
            "value": performance.get("value"),
            "band": performance.get("band"),
            "judged": performance.get("judged"),
            "dropped": performance.get("dropped"),
        })  # fmt: skip
        print(f"  {name} {day}: ndcg {performance.get('value')} dropped "
              f"{performance.get('dropped')} drift {record['drift']}", flush=True)  # fmt: skip
        day += timedelta(days=1)
    after = [d for d in days if d["after_shift"]]
    before = [d for d in days if not d["after_shift"]]
    first_drop = next((n for n, d in enumerate(after) if d["dropped"]), None)
    return {
        "seed": seed,
        "shop": name,
        "champion": trained,
        "clean_days": len(before),
        "false_drops": sum(bool(d["dropped"]) for d in before),
        "shifted_days": len(after),
        "drops_after_shift": sum(bool(d["dropped"]) for d in after),
        "delay_intervals": first_drop,
        "days": days,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[202])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument(
        "--parts", nargs="+", default=["detection", "performance", "cost"],
        choices=["detection", "performance", "cost"],
        help="what to measure; the parts left out keep their last results",
    )  # fmt: skip
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(args.case, args.rows), default=str))
        return
    from benchmarks.common import RESULTS

    kept = RESULTS / "drift.json"
    report = json.loads(kept.read_text()) if kept.exists() else {}
    report["machine"] = machine()
    if "detection" in args.parts:
        report["detection"] = detection(args.seeds, args.windows)
        report |= {"seeds": args.seeds, "windows": args.windows}
    if "performance" in args.parts:
        report["performance"] = [
            performance_drop(seed, shifted) for seed in args.seeds for shifted in (True, False)
        ]
    if "cost" in args.parts:
        report["cost"] = cost(args.rows)
        report["rows"] = args.rows
    write_results("drift", report, markdown(report))


def markdown(report: dict) -> str:
    table, costs, performance = report["detection"], report["cost"], report.get("performance")
    lines = [
        f"# Drift detection on the simulator (seeds {report['seeds']}, {report['windows']} clean "
        f"and up to {report['windows']} shifted daily windows per knob and seed; thresholds "
        "calibrated on the ten days before the reference end)",
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
    if performance:
        lines += [
            "",
            "# A performance drop: a champion frozen at day 35, tastes shifting on day 42 "
            "(strength 0.5), daily intervals",
            "",
            "| shop | champion (gate) | clean days: false drops | shifted days: drops "
            "| delay to the first drop (intervals) |",
            "|---|---|---|---|---|",
        ]
        for r in performance:
            champion = r["champion"]
            verdict = "passed" if champion["passed"] else "rejected"
            delay = "-" if r["delay_intervals"] is None else r["delay_intervals"]
            lines.append(
                f"| {r['shop']} | v{champion['version']} ({verdict}) | {r['false_drops']} / "
                f"{r['clean_days']} | {r['drops_after_shift']} / {r['shifted_days']} | {delay} |"
            )
    lines += [
        "",
        f"# Cost of one check: {report['rows']:,} reference + {report['rows']:,} current rows "
        "x 20 numerical columns, each case in its own process",
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
