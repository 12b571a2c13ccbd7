"""Pricing benchmark: Dominick's OJ holdout against the references, elasticities, and the
simulator's truth (elasticity error, profit against the oracle), with training time.

    .venv/bin/python benchmarks/pricing.py [--inputs orange_juice simulator] [--report-only]

Both inputs go through the product's own path: ingest -> pricing features -> a pricing_v1
training set from Feast -> `train_pricing`; data folders are built once under benchmarks/.work/.

* orange_juice: weeks 136-160 held out (the last 20 % of weeks), weeks 124-135 tune the model
  (rolling folds). RMSE of log(1 + units) for the model and the references (a)-(e), each next to
  the figure measured independently (DESIGN.md); own-price elasticities per brand (mean over its
  stores) next to reference (b)'s per-brand coefficients.
* simulator: 300 items x 5 stores x 26 weeks, the last 4 weeks as test; median absolute
  percentage error of each item's recovered elasticity, and the true profit of our optimised
  prices (no guardrails) as a share of the oracle's, for every item x store of the last week.
* simulator_1x50, simulator_20x1: other shapes of shop (one product in 50 stores, 20 products
  in one store), 52 weeks, 8 valid and 8 test; the same figures, and the structure the model
  chose on the valid weeks. The first table: ours against the strongest reference of each run.
Training time is reported as a ratio to fitting reference (e) in the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from common import RESULTS, WORK, machine, provide_sources, write_results

REFERENCE_RMSE = {
    "(a) log-log per item, promo + ad": 0.691,
    "(b) + store effects, cross prices": 0.548,
    "(c) gradient boosting, untuned": 0.618,
    "(d) last value": 0.998,
    "(e) (b) + lagged demand": 0.540,
}
GOAL = "beat (e) 0.540; goal <= 0.52"
SIMULATOR = {"events": 30_000, "users": 1_000, "items": 300, "stores": 5, "days": 182}
# Other shapes of shop (issue 22): one product in many stores, many products in one store; a
# year each, so the valid and test weeks are 8 of 52.
ONE_ITEM = {"events": 5_000, "users": 300, "items": 1, "categories": 1, "stores": 50, "days": 364}
ONE_STORE = {"events": 5_000, "users": 300, "items": 20, "categories": 4, "stores": 1, "days": 364}
INPUTS = {
    # name: (first day, end, valid weeks, test weeks, simulator config)
    "orange_juice": (date(1990, 6, 14), date(1992, 10, 8), 12, 25, None),
    "simulator": (date(2024, 1, 1), date(2024, 7, 1), 4, 4, SIMULATOR),
    "simulator_1x50": (date(2024, 1, 1), date(2024, 12, 30), 8, 8, ONE_ITEM),
    "simulator_20x1": (date(2024, 1, 1), date(2024, 12, 30), 8, 8, ONE_STORE),
}


def training_set(name: str) -> Any:
    """The input's pricing training set, built once through the product's path."""
    from core.settings import get_settings
    from features.ingest import ingest, ingest_attributes
    from features.pipeline import run_features
    from training.pricing.dataset import MODEL, PricingData, build_training_set
    from training.training_sets import Windows, training_set_path

    first, end, valid_weeks, test_weeks, simulator = INPUTS[name]
    source = "simulator" if simulator else name
    extra = {"simulator": simulator} if simulator else {}
    settings = get_settings(data_dir=WORK / "pricing" / name, sales_source=source, **extra)
    windows = Windows.weeks_before(
        datetime.combine(end, datetime.min.time(), UTC), valid_weeks, test_weeks
    )
    path = training_set_path(settings, MODEL, source, windows)
    if not path.exists():
        provide_sources(settings, source)
        ingest_attributes("sales", first - timedelta(days=1), first, settings)
        ingest("sales", first, end, settings)
        run_features("sales", first, end, settings)
        build_training_set(settings, source, windows)
    return PricingData.load(path), settings


def run_input(name: str) -> dict[str, Any]:
    from training.pricing.baselines import LogLog
    from training.pricing.evaluate import (
        elasticity_distribution,
        elasticity_table,
        holdout_table,
        simulator_scores,
    )
    from training.pricing.train import train_pricing

    data, settings = training_set(name)
    print(f"{name}: {data.metadata['rows']}", flush=True)
    started = time.perf_counter()
    result = train_pricing(
        data.fit,
        data.valid,
        on_fit=lambda p: print(
            f"  {p.stage} {p.index}/{p.total} l2={p.l2:g} "
            + (f"valid {p.valid_rmse:.4f} " if p.valid_rmse is not None else "")
            + f"({p.seconds:.1f}s)",
            flush=True,
        ),
    )
    train_seconds = time.perf_counter() - started
    train_rows = pd.concat([data.fit, data.valid], ignore_index=True)
    clock = time.perf_counter()
    reference_b = LogLog(store_effects=True, cross_prices=True).fit(train_rows)
    LogLog(store_effects=True, cross_prices=True, lags=True).fit(train_rows)
    reference_seconds = time.perf_counter() - clock  # (b) and (e) fitted side by side
    table = holdout_table(result.model, train_rows, data.test)
    pairs = elasticity_table(result.model, data.test)
    report: dict[str, Any] = {
        "rows": data.metadata["rows"],
        "stores": int(data.fit.store_id.nunique()),
        "windows": data.metadata["windows"],
        "holdout": table,
        "l2": result.l2,
        "structure": result.structure,
        "valid_rmse_by_l2": {str(k): v for k, v in result.valid_rmse.items()},
        "valid_rmse_by_structure": {
            name: {str(k): v for k, v in scores.items()}
            for name, scores in result.valid_rmse_by_structure.items()
        },
        "strongest_reference": strongest_reference(table),
        "train_seconds": train_seconds,
        "fits": len(result.fits),
        "references_b_e_fit_seconds": reference_seconds,
        "elasticity": {
            "pairs": len(pairs),
            "share_negative": float((pairs.elasticity < 0).mean()),
            "by_item": elasticity_distribution(pairs),
            "reference_b_by_item": reference_b.own_elasticity,
        },
    }
    if name.startswith("simulator"):
        truth = pd.read_parquet(settings.sources_dir / "simulator" / "truth" / "items.parquet")
        clock = time.perf_counter()
        report["simulator"] = simulator_scores(result.model, data.test, truth)
        report["simulator"]["seconds"] = time.perf_counter() - clock
    print(json.dumps({k: report[k] for k in ("holdout", "l2", "structure")}, indent=1), flush=True)
    return report


def strongest_reference(table: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The best reference of the run on the test rows, and whether ours beat it."""
    from training.pricing.evaluate import OURS

    name = min((n for n in table if n != OURS), key=lambda n: table[n]["rmse"])
    ours, theirs = table[OURS]["rmse"], table[name]["rmse"]
    return {"name": name, "rmse": theirs, "ours": ours, "beaten": ours < theirs}


def render(report: dict[str, Any]) -> str:
    from training.pricing.model import PricingConfig

    lines = ["# Pricing: holdout RMSE, elasticities, simulator truth\n"]
    inputs = report.get("inputs", {})
    lines += [
        "## Every shape: ours against the strongest reference of the same run\n",
        "| input | items x stores | structure chosen (valid weeks) | l2 | ours | strongest "
        "reference | its RMSE | beaten |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in inputs.items():
        best = result.get("strongest_reference")
        if best is None:
            continue
        shape = f"{len(result['elasticity']['by_item'])} x {result.get('stores', '?')}"
        lines.append(
            f"| {name} | {shape} | {result.get('structure', 'per-item')} | {result['l2']:g} | "
            f"{best['ours']:.4f} | {best['name']} | {best['rmse']:.4f} | "
            f"{'yes' if best['beaten'] else '**no**'} |"
        )
    lines.append("")
    for name, result in report.get("inputs", {}).items():
        rows = result["rows"]
        counts = f"rows fit {rows['fit']}, valid {rows['valid']}, test {rows['test']}"
        lines.append(f"## {name} ({counts})\n")
        lines += ["| model | RMSE log units | reference |", "|---|---|---|"]
        for model, scores in result["holdout"].items():
            reference = REFERENCE_RMSE.get(model, GOAL) if name == "orange_juice" else ""
            lines.append(f"| {model} | {scores['rmse']:.4f} | {reference} |")
        ratio = result["train_seconds"] / max(result["references_b_e_fit_seconds"], 1e-9)
        default = PricingConfig()
        points = sum(len(v) for v in result.get("valid_rmse_by_structure", {}).values())
        points = points or len(result["valid_rmse_by_l2"])  # runs from before the structures
        fits = points * default.valid_folds + default.members
        lines.append(
            f"\nTraining: {result['train_seconds']:.1f} s for {fits} L-BFGS fits ({points} "
            f"structure x l2 points x {default.valid_folds} rolling folds, then "
            f"{default.members} members), {ratio:.1f}x the time to fit "
            f"references (b) + (e) ({result['references_b_e_fit_seconds']:.1f} s) in the same "
            f"run; chosen structure {result.get('structure', 'per-item')}, l2 = "
            f"{result['l2']:g}.\n"
        )
        elasticity = result["elasticity"]
        lines.append(
            f"Own-price elasticities: {elasticity['pairs']} item x store pairs, "
            f"{100 * elasticity['share_negative']:.1f} % negative.\n"
        )
        lines += [
            "| item | ours: min | median | max | reference (b) |",
            "|---|---|---|---|---|",
        ]
        for item, stats in sorted(elasticity["by_item"].items(), key=lambda kv: _order(kv[0])):
            b = elasticity["reference_b_by_item"].get(item)
            lines.append(
                f"| {item} | {stats['min']:.2f} | {stats['median']:.2f} | {stats['max']:.2f} | "
                + ("" if b is None else f"{b:.2f}")
                + " |"
            )
            if name == "simulator" and len(lines) > 80:
                lines.append("| ... | | | | |")
                break
        if "simulator" in result:
            sim = result["simulator"]
            lines.append(
                f"\nAgainst the truth: median absolute elasticity error "
                f"**{sim['elasticity_median_abs_pct_error']:.1f} %** (target <= 15 %; 90th "
                f"percentile {sim['elasticity_abs_pct_error_q90']:.1f} %) over {sim['items']} "
                f"items; optimised prices earn **{sim['profit_vs_oracle_pct']:.1f} %** of the "
                f"oracle's profit (target >= 95 %; worst item x store "
                f"{sim['profit_vs_oracle_worst_pct']:.1f} %) over {sim['quotes']} quotes.\n"
            )
        lines.append("")
    machine_info = report.get("machine", {})
    lines.append(
        f"Machine: {machine_info.get('cpu_count')} CPU cores, commit "
        f"{str(machine_info.get('git_commit'))[:10]}.\n"
    )
    return "\n".join(lines)


def _order(item: str) -> tuple[int, str]:
    return (int(item), item) if item.isdigit() else (0, item)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the markdown from the last JSON"
    )
    args = parser.parse_args()
    results = {} if args.report_only else {name: run_input(name) for name in args.inputs}
    # read only now: a run of other inputs side by side may have written its own meanwhile
    previous = RESULTS / "pricing.json"
    report: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    if results:
        report["machine"] = machine()
        report.setdefault("inputs", {}).update(results)
    write_results("pricing", report, render(report))


if __name__ == "__main__":
    main()
