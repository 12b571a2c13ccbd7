"""Online experiments on the responsive simulated shop, where the true effect of every answer is
known: false positives with a look every day, power, coverage of the true uplift, days to a
decision, and the sample-ratio check on a broken split.

    .venv/bin/python benchmarks/experiments.py [--reps 200] [--days 14] [--quick]

Each replication is one experiment of `--days` days on the shop simulator's world
(features/sources/simulator/experiment_streams.py): every exposure's answer comes from its
unit's arm (the gateway's sticky hash, core/arms.py), the outcome is drawn from the simulator's
own generative model, and both arms' expected outcomes are kept as the truth. A unit is judged on
its outcomes in the 24 h (a shopper) or 7 days (a shelf) after its first exposure
(AISLE_EXPERIMENTS__UNIT_WINDOW_HOURS), and
the plan (expected units) is what a pilot run of the same traffic exposes. The statistics are
the DAG's (monitoring/experiment_stats.py `run_looks`, through monitoring/experiment_analysis.py's
exposure rows): spotify-confidence's group-sequential z-test with CUPED on each unit's
pre-experiment value, one look at the end of every day, the decision rule of the DAG (promote on a
significant gain, stop on harm, SRM or a guardrail, futility at the planned units).

Scenarios (each `--reps` replications, seeds 0..reps-1):
  recommender A/A   the same recommender (affinity) in both arms: any promote or stop_harm is a
                    false positive
  recommender A/B   popularity (control) against the true-affinity recommender (treatment),
                    metric purchases per shopper
  pricing A/A       the shelf price in both arms
  pricing A/B       the shelf price against the profit-optimal price, metric profit
  SRM               the recommender A/A with a 45/55 split analysed as 50/50

Coverage: the share of replications whose sequential interval at the last look covers the true
average treatment effect over the exposed units (the truth summed over their actual exposures,
under both policies). Results: benchmarks/results/experiments.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchmarks.common import machine, write_results  # noqa: E402

WORLD = {"users": 5_000, "items": 1_000, "stores": 5, "events": 50_000, "seed": 7}


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # recommendations | prices
    control: str
    treatment: str
    metric: str
    share: float = 0.5  # the split the gateway is told
    true_share: float | None = None  # the split that happens (an SRM bug), when different

    @property
    def model(self) -> str:
        return "recommender" if self.kind == "recommendations" else "pricing"


SCENARIOS = [
    Scenario("recommender A/A", "recommendations", "affinity", "affinity", "purchases"),
    Scenario("recommender A/B", "recommendations", "popularity", "affinity", "purchases"),
    Scenario("pricing A/A", "prices", "shelf_price", "shelf_price", "profit"),
    Scenario("pricing A/B", "prices", "shelf_price", "oracle_price", "profit"),
    Scenario("SRM 45/55", "recommendations", "affinity", "affinity", "purchases", 0.5, 0.55),
]
PRE_DAYS = 7
UNIT_WINDOW_HOURS = {"recommender": 24, "pricing": 168}  # AISLE_EXPERIMENTS__UNIT_WINDOW_HOURS
METRIC_COLUMN = {"purchases": "purchased", "profit": "profit", "clicks": "clicked"}


def streams_of(model, scenario: Scenario, seed: int, args):
    from features.sources.simulator.experiment_streams import simulate_exposures

    return simulate_exposures(
        model,
        {"control": scenario.control, "treatment": scenario.treatment},
        days=args.days,
        visitors_per_day=args.visitors,
        treatment_share=scenario.true_share or scenario.share,
        seed=seed,
        kind=scenario.kind,
        shelves=args.shelves,
        pre_days=PRE_DAYS,
        start_week=1,
    )


def planned_units(model, scenario: Scenario, args) -> int:
    """The plan a shop makes from its traffic: the units a pilot experiment (seed 10,000, not
    one of the measured seeds) exposes in `--days` days (shoppers, or shelf-days)."""
    from monitoring.experiment_analysis import exposure_rows

    pilot = streams_of(model, scenario, 10_000, args)
    rows, _ = exposure_rows(scenario.model, pilot.outcomes, None, 0)
    return int(rows["unit"].nunique())


def replicate(model, scenario: Scenario, seed: int, args, plan: int) -> dict:
    import numpy as np
    import pandas as pd

    from monitoring.experiment_analysis import exposure_rows
    from monitoring.experiment_stats import Design, look_statistics, run_looks

    streams = streams_of(model, scenario, seed, args)
    column = METRIC_COLUMN[scenario.metric]
    outcomes = streams.outcomes.rename(columns={column: scenario.metric})
    pre = streams.pre[["unit", column]].rename(columns={column: "pre"})
    rows, covariates = exposure_rows(scenario.model, outcomes, pre, PRE_DAYS)
    start = outcomes["at"].min().normalize()
    looks = [start + pd.Timedelta(days=d + 1) for d in range(args.days)]
    design = Design(
        confidence=0.95,
        expected_units=plan,
        treatment_share=scenario.share,
        unit_window=pd.Timedelta(hours=UNIT_WINDOW_HOURS[scenario.model]),
    )
    began = time.perf_counter()
    analysis, _ = run_looks(rows, looks, scenario.metric, design, covariates)
    seconds = time.perf_counter() - began
    # The decision a daily monitor takes: the first look whose verdict is not "continue".
    first = _first_decision(analysis, design)
    truth = streams.truth
    # The truth of the same estimand: each exposure's expected treatment-minus-control outcome,
    # through the same rows and unit window, averaged over the units at the last look.
    truth = look_statistics(
        rows.assign(effect=rows[f"true_effect_{column}"]), looks[-1:], "effect",
        window=design.unit_window,
    )  # fmt: skip
    true_effect = float(truth["y_sum"].sum() / truth["n"].sum())
    last = analysis.iloc[-1]
    return {
        "seed": seed,
        "action": first[0],
        "day": first[1],
        "effect": float(last["effect"]),
        "lower": float(last["lower"]),
        "upper": float(last["upper"]),
        "true_effect": true_effect,
        "covered": bool(last["lower"] <= true_effect <= last["upper"]),
        "srm_p": float(last["srm_p"]),
        "variance_reduction": float(last["variance_reduction"]),
        "units": int(last["n_control"] + last["n_treatment"]),
        "analysis_seconds": seconds,
        "control_mean": float(np.asarray(last["mean_control"])),
    }


def _first_decision(analysis, design) -> tuple[str, int | None]:
    from monitoring.experiment_stats import decide

    for end in range(1, len(analysis) + 1):
        decision = decide(analysis.iloc[:end], design)
        if decision.action != "continue":
            return decision.action, int(analysis.iloc[end - 1]["look"]) + 1  # days in
    return "continue", None


def summarise(scenario: Scenario, runs: list[dict]) -> dict:
    import numpy as np

    n = len(runs)
    actions = [r["action"] for r in runs]
    days = [r["day"] for r in runs if r["action"] == "promote"]
    out = {
        "scenario": scenario.name,
        "model": scenario.model,
        "metric": scenario.metric,
        "control": scenario.control,
        "treatment": scenario.treatment,
        "replications": n,
        "promote": actions.count("promote") / n,
        "stop_harm": actions.count("stop_harm") / n,
        "stop_srm": actions.count("stop_srm") / n,
        "stop_futility": actions.count("stop_futility") / n,
        "continue": actions.count("continue") / n,
        "coverage": float(np.mean([r["covered"] for r in runs])),
        "true_effect": float(np.mean([r["true_effect"] for r in runs])),
        "mean_effect": float(np.mean([r["effect"] for r in runs])),
        "median_days_to_promote": float(np.median(days)) if days else None,
        "variance_reduction": float(np.mean([r["variance_reduction"] for r in runs])),
        "units": float(np.mean([r["units"] for r in runs])),
        "analysis_seconds": float(np.mean([r["analysis_seconds"] for r in runs])),
    }
    out["false_positive_rate"] = out["promote"] + out["stop_harm"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--visitors", type=int, default=150, help="shoppers a day")
    parser.add_argument("--shelves", type=int, default=200, help="item x store shelves priced")
    parser.add_argument("--quick", action="store_true", help="20 replications, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.reps = 20

    from features.sources.simulator import SimulatorConfig
    from features.sources.simulator.responses import ResponseModel

    model = ResponseModel.from_config(SimulatorConfig(**WORLD))
    results = []
    for scenario in SCENARIOS:
        began = time.perf_counter()
        plan = planned_units(model, scenario, args)
        runs = [replicate(model, scenario, seed, args, plan) for seed in range(args.reps)]
        summary = summarise(scenario, runs)
        summary["seconds"] = round(time.perf_counter() - began, 1)
        summary["planned_units"] = plan
        results.append(summary)
        print(summary, flush=True)

    by = {r["scenario"]: r for r in results}
    report = {
        "machine": machine(),
        "world": WORLD,
        "days": args.days,
        "visitors_per_day": args.visitors,
        "shelves": args.shelves,
        "replications": args.reps,
        "aa_false_positive_rate": max(
            by["recommender A/A"]["false_positive_rate"], by["pricing A/A"]["false_positive_rate"]
        ),
        "power": min(by["recommender A/B"]["promote"], by["pricing A/B"]["promote"]),
        "coverage": min(by["recommender A/B"]["coverage"], by["pricing A/B"]["coverage"]),
        "srm_flagged": by["SRM 45/55"]["stop_srm"],
        "scenarios": results,
    }
    write_results("experiments", report, markdown(report))


def markdown(report: dict) -> str:
    lines = [
        "# Online experiments on the responsive simulated shop",
        "",
        f"{report['replications']} replications per scenario, {report['days']} days, a look at "
        f"the end of every day; {report['visitors_per_day']} shoppers a day (recommender), "
        f"{report['shelves']} shelves priced daily (pricing); 95 % sequential intervals "
        "(spotify-confidence, group-sequential z-test with CUPED).",
        "",
        f"- A/A false-positive rate (any promote or harm verdict over all daily looks): "
        f"**{report['aa_false_positive_rate']:.1%}** (target <= 5 %)",
        f"- Power (known-better model promoted within {report['days']} days): "
        f"**{report['power']:.1%}** (target >= 80 %)",
        f"- Coverage of the true uplift at the last look: **{report['coverage']:.1%}** "
        "(target >= 90 %)",
        f"- A 45/55 split bug flagged by the SRM check: **{report['srm_flagged']:.1%}** of "
        "replications",
        "",
        "| scenario | metric | promote | harm | SRM | futility | continue | coverage | true "
        "effect | mean estimate | median days to promote | CUPED variance cut | s/analysis |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["scenarios"]:
        days = r["median_days_to_promote"]
        lines.append(
            f"| {r['scenario']} ({r['control']} vs {r['treatment']}) | {r['metric']} | "
            f"{r['promote']:.1%} | {r['stop_harm']:.1%} | {r['stop_srm']:.1%} | "
            f"{r['stop_futility']:.1%} | {r['continue']:.1%} | {r['coverage']:.1%} | "
            f"{r['true_effect']:.4g} | {r['mean_effect']:.4g} | "
            f"{'-' if days is None else f'{days:g}'} | {r['variance_reduction']:.1%} | "
            f"{r['analysis_seconds']:.2f} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
