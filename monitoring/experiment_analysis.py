"""One online experiment read from the outcomes zone: its exposures, each unit's metric, the
group-sequential test at every look and the decision (monitoring.experiment_stats).

    analyse_experiment(settings, experiment, looks=None) -> ExperimentAnalysis

`experiment` is the gateway's record as `GET /admin/experiments` gives it (a plain dict: this
package does not import serving/): id, model, share, metric, started_at (unix seconds), status,
ended_at, control/treatment colours and versions, guardrail_metrics.

* **Exposures**: the model's outcomes since `started_at` that carry the experiment's id, one row
  per answer, in the arm the unit was assigned (intention to treat). The unit is the one the
  gateway hashes: the shopper (user_id) for the recommender, the shelf "<item_id>|<store_id>" for
  pricing. An answer that names no unit is counted (`unitless`) and left out: the gateway never
  sends one into the treatment arm.
* **Metric**: the answer's clicks, carts, purchases or revenue; the quote's units, revenue or
  profit. A unit's value at a look is its sum over the exposures up to it.
* **CUPED covariate**: each unit's same metric over `pre_period_days` before the start (every
  answer of the model then, whatever arm or experiment; 0 for a unit with none, and for a quote
  whose profit or an answer whose revenue is unknown: the covariate only has to be independent
  of the arm). An exposure whose metric is unknown stops the analysis with a clear error.
* **Looks**: every midnight UTC after the start until now (the end, for an ended experiment),
  and now; or the times given.

With `write=True` (the default) the report is written and logged (monitoring.experiment_report);
nothing else is ever written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from core.settings import METRICS, UNITS, Settings

from .experiment_stats import ARMS, Decision, Design, analyse, look_statistics, run_looks
from .outcomes import read_outcomes


@dataclass
class ExperimentAnalysis:
    experiment: dict[str, Any]
    metric: str
    unit: str  # how units are named, for people (core.settings.UNITS)
    design: Design
    looks: list[pd.Timestamp]
    analysis: pd.DataFrame  # the primary metric per look (experiment_stats.analyse's columns)
    guardrails: dict[str, pd.DataFrame]  # the same per guardrail metric
    decision: Decision
    units: dict[str, int]  # units seen per arm, up to the last look
    exposures: dict[str, int]  # answers per arm, up to the last look
    unitless: int = 0  # the experiment's answers that named no unit (left out)
    report: Path | None = None
    mlflow_run_id: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.experiment["model"]


def analyse_experiment(
    settings: Settings,
    experiment: dict[str, Any],
    looks: list[pd.Timestamp] | None = None,
    write: bool = True,
) -> ExperimentAnalysis:
    """The experiment's analysis at each look (module docstring); with `write`, its report at
    `report_path` and in MLflow."""
    model, experiment_id = experiment["model"], str(experiment["id"])
    if model not in METRICS:
        raise ValueError(f"experiment {experiment_id} is on unknown model {model!r}")
    metric = experiment.get("metric") or settings.experiments.primary_metric[model]
    guardrails = [
        g
        for g in (
            experiment.get("guardrail_metrics") or settings.experiments.guardrail_metrics[model]
        )
        if g != metric
    ]
    for name in (metric, *guardrails):
        if name not in METRICS[model]:
            raise ValueError(
                f"experiment {experiment_id}: {name!r} is no {model} metric; "
                f"choose from {list(METRICS[model])}"
            )
    started = _timestamp(experiment["started_at"])
    until = _timestamp(experiment["ended_at"]) if experiment.get("ended_at") else _now()
    looks = _looks(started, until) if looks is None else [_utc(t) for t in looks]
    if not looks:
        raise ValueError(f"experiment {experiment_id}: no looks given")

    outcomes = read_outcomes(settings, model, started, looks[-1] + timedelta(microseconds=1))
    outcomes = outcomes[outcomes["experiment"] == experiment_id]
    outcomes = outcomes.assign(unit=_units(model, outcomes))
    unitless = int(outcomes["unit"].isna().sum())
    columns = ["unit", "arm", "at", *dict.fromkeys([metric, *guardrails])]
    exposures = outcomes.dropna(subset=["unit"])[columns]
    _require_known(exposures, [metric, *guardrails], experiment_id)

    design = Design(
        confidence=settings.experiments.confidence,
        expected_units=settings.experiments.expected_units[model],
        treatment_share=float(experiment["share"]),
        unit_window=unit_window(settings, model),
    )
    pre = _pre_period(settings, model, metric, started)
    randomised = exposures  # by the unit the gateway hashed: shoppers, shelves
    exposures, covariates = exposure_rows(
        model, exposures, pre, settings.experiments.pre_period_days
    )
    analysis, decision = run_looks(exposures, looks, metric, design, covariates, guardrails)
    # run_looks decides on the guardrails but returns only the primary's frame: the report shows
    # them too, so each is analysed again as run_looks does it (without covariates)
    guardrail_frames = {
        name: analyse(look_statistics(exposures, looks, name, window=design.unit_window), design)
        for name in guardrails
    }
    seen = randomised[randomised["at"] <= looks[-1]]
    result = ExperimentAnalysis(
        experiment=dict(experiment),
        metric=metric,
        unit=UNITS[model],
        design=design,
        looks=list(looks),
        analysis=analysis,
        guardrails=guardrail_frames,
        decision=decision,
        units={arm: int(seen.loc[seen["arm"] == arm, "unit"].nunique()) for arm in ARMS},
        exposures={arm: int((seen["arm"] == arm).sum()) for arm in ARMS},
        unitless=unitless,
    )
    if unitless:
        result.notes.append(f"{unitless} answer(s) named no unit and are left out.")
    if write:
        from .experiment_report import log_report, report_path, write_report

        result.report = write_report(result, report_path(settings, experiment_id))
        result.mlflow_run_id = log_report(settings, result)
    return result


def _units(model: str, outcomes: pd.DataFrame) -> pd.Series:
    """The unit of each answer as the gateway names it (serving.experiments.unit_of)."""
    if model == "recommender":
        return outcomes["user_id"].astype(object).where(outcomes["user_id"].notna())
    named = outcomes["item_id"].notna() & outcomes["store_id"].notna()
    shelves = outcomes["item_id"].astype(str) + "|" + outcomes["store_id"].astype(str)
    return shelves.astype(object).where(named)


UNKNOWN_BECAUSE = {
    "profit": "a quote that sold without a cost in its request has no profit: the answer log "
    "keeps the request's cost only); judge it on units or revenue instead",
    "revenue": "a recommendation whose shopper bought an item without a price has no revenue: "
    "the shop's events name none); judge it on purchases instead",
}


def _require_known(exposures: pd.DataFrame, metrics: list[str], experiment_id: str) -> None:
    for name in metrics:
        missing = int(exposures[name].isna().sum())
        if missing:
            raise ValueError(
                f"experiment {experiment_id}: {missing} answer(s) have no {name} "
                f"({UNKNOWN_BECAUSE.get(name, 'its outcome is unknown)')}"
            )


def unit_window(settings: Settings, model: str) -> pd.Timedelta | None:
    """The model's unit window (experiment_stats.Design.unit_window), None when 0."""
    hours = settings.experiments.unit_window_hours.get(model, 0.0)
    return pd.Timedelta(hours=hours) if hours > 0 else None


def _pre_period(
    settings: Settings, model: str, metric: str, started: pd.Timestamp
) -> pd.DataFrame | None:
    """Each unit's metric summed over the pre-period (`unit`, `pre`), or None without one."""
    days = settings.experiments.pre_period_days
    if days <= 0:
        return None
    before = read_outcomes(settings, model, started - timedelta(days=days), started)
    before = before.assign(unit=_units(model, before)).dropna(subset=["unit"])
    pre = before.groupby("unit")[metric].sum(min_count=1).fillna(0.0).astype(float)
    return pd.DataFrame({"unit": pre.index.astype(object), "pre": pre.to_numpy()})


def exposure_rows(
    model: str, exposures: pd.DataFrame, pre: pd.DataFrame | None, pre_days: float
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The rows the statistics read, and their CUPED covariates: what the DAG and
    benchmarks/experiments.py both analyse.

    `exposures` has one row per answer with `unit` (the unit of randomisation: the shopper, the
    shelf), `arm`, `at` and the metrics; `pre` each unit's metric summed over `pre_days` before
    the start (`unit`, `pre`), the covariate (a unit without one gets 0). The unit analysed is
    the unit randomised: shelf-days of one shelf are alike, and judging them as independent
    units gave 28 % A/A false positives (benchmarks/experiments.py).
    """
    if pre is None or pre_days <= 0:
        return exposures, None
    return exposures, pre[pre["unit"].isin(exposures["unit"])]


def _looks(started: pd.Timestamp, until: pd.Timestamp) -> list[pd.Timestamp]:
    """Each midnight UTC after the start and before `until`, then `until`."""
    first = started.normalize() + timedelta(days=1)
    midnights = (
        list(pd.date_range(first, until, freq="D", inclusive="left")) if first < until else []
    )
    return [*midnights, until]


def _timestamp(seconds: float) -> pd.Timestamp:
    return pd.Timestamp(float(seconds), unit="s", tz="UTC")


def _utc(moment: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _now() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(UTC))
