"""The model gate: a newly registered version ships (alias `challenger`) only when it beats the
champion on the same fresh holdout and passes its behavioural tests.

Both versions are loaded from the registry and scored through the same predict interface on the
same rows, so the comparison is fair even when their vocabularies differ. The metric rules are
MLflow's own (`mlflow.validate_evaluation_results` with `MetricThreshold`s):

* the primary metric must beat the champion's by `margin` (`min_absolute_change`);
* each secondary metric may fall behind the champion's by at most its tolerance (an absolute
  `threshold` at champion - tolerance; MLflow's changes must be positive, so a tolerance is
  written as a threshold);
* every metric must clear its absolute floor, which a first model (no champion yet) must clear
  too: the strongest reference computed on the same rows (`floor`), named in a rejection
  (`floor_source`).

The decision and every reason are written as tags on the MLflow model version
(`aisle.gate`, `aisle.gate.reasons`, `aisle.gate.champion`, `aisle.gate.metrics`) and logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from core.settings import GatePolicy, Settings, get_settings

log = logging.getLogger(__name__)

PASSED, REJECTED = "passed", "rejected"


@dataclass(frozen=True)
class MetricRule:
    name: str
    greater_is_better: bool
    margin: float | None = None  # primary: must beat the champion by this much
    tolerance: float | None = None  # secondary: may fall behind the champion by this much
    floor: float | None = None  # absolute: the strongest reference on the same rows, or a setting
    floor_source: str | None = None  # what set the floor, named in a rejection ("EASE (l2=300)")


@dataclass
class GateDecision:
    model: str
    version: str
    champion_version: str | None
    passed: bool
    reasons: list[str]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # challenger, champion...
    behaviour: dict[str, bool] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return PASSED if self.passed else REJECTED

    def tags(self) -> dict[str, str]:
        return {
            "aisle.gate": self.verdict,
            "aisle.gate.reasons": "; ".join(self.reasons) or "all checks passed",
            "aisle.gate.champion": self.champion_version or "none",
            "aisle.gate.metrics": json.dumps(self.metrics, sort_keys=True),
            "aisle.gate.behaviour": json.dumps(self.behaviour, sort_keys=True),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def compare_metrics(
    rules: list[MetricRule],
    challenger: dict[str, float],
    champion: dict[str, float] | None,
) -> list[str]:
    """The reasons `challenger` fails `rules` against `champion` (None: floors only); [] = pass."""
    import mlflow
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    thresholds = {}
    for rule in rules:
        threshold = rule.floor
        if champion is not None and rule.tolerance is not None:
            slack = -rule.tolerance if rule.greater_is_better else rule.tolerance
            allowed = champion[rule.name] + slack
            pick = max if rule.greater_is_better else min
            threshold = allowed if threshold is None else pick(threshold, allowed)
        change = rule.margin if champion is not None and rule.margin else None
        if threshold is None and change is None:
            continue
        thresholds[rule.name] = MetricThreshold(  # MLflow takes plain floats only
            threshold=None if threshold is None else float(threshold),
            min_absolute_change=None if change is None else float(change),
            greater_is_better=bool(rule.greater_is_better),
        )
    if not thresholds:
        return []
    try:
        mlflow.validate_evaluation_results(
            thresholds,
            EvaluationResult(metrics=challenger, artifacts={}),
            None if champion is None else EvaluationResult(metrics=champion, artifacts={}),
        )
    except ModelValidationFailedException as failed:  # one line per failed check
        lines = [line.strip() for line in str(failed).splitlines() if line.strip()]
        return [_name_floors(line, rules) for line in lines]
    return []


def _name_floors(reason: str, rules: list[MetricRule]) -> str:
    """MLflow says "rmse threshold = 0.338"; say which reference set it: "rmse threshold
    ((b) store effects) = 0.338"."""
    for rule in rules:
        if rule.floor_source:
            reason = reason.replace(
                f"{rule.name} threshold = ", f"{rule.name} threshold ({rule.floor_source}) = "
            )
    return reason


def decide(
    model: str,
    version: str,
    champion_version: str | None,
    rules: list[MetricRule],
    metrics: dict[str, dict[str, float]],
    behaviour: dict[str, bool],
) -> GateDecision:
    """Metric rules and behavioural tests together; `metrics` holds `challenger` and, when there
    is a champion, `champion`."""
    reasons = compare_metrics(rules, metrics["challenger"], metrics.get("champion"))
    reasons += [f"behavioural test failed: {name}" for name, ok in behaviour.items() if not ok]
    return GateDecision(model, version, champion_version, not reasons, reasons, metrics, behaviour)


def record(decision: GateDecision) -> GateDecision:
    """Tags on the model version; the `challenger` alias when it passed."""
    from mlflow import MlflowClient

    from training.tracking import CHALLENGER, set_alias

    client = MlflowClient()
    for key, value in decision.tags().items():
        client.set_model_version_tag(decision.model, decision.version, key, value)
    if decision.passed:
        set_alias(decision.model, CHALLENGER, decision.version)
    against = f"champion v{decision.champion_version}" if decision.champion_version else "floors"
    log.info(
        "gate %s: %s version %s against %s; metrics %s; behaviour %s",
        decision.verdict.upper(), decision.model, decision.version, against,
        json.dumps(decision.metrics), json.dumps(decision.behaviour),
    )  # fmt: skip
    for reason in decision.reasons:
        log.warning("gate reason: %s", reason)
    return decision


@dataclass
class GateInputs:
    """What every model's gate starts from: the settings, the challenger and the champion."""

    settings: Settings
    models: dict[str, Any]  # "challenger", and "champion" when there is one
    champion_version: str | None

    @property
    def policy(self) -> GatePolicy:
        return self.settings.gate


def gate_inputs(
    model: str, version: str, load: Callable[[str], Any], settings: Settings | None = None
) -> GateInputs:
    """Load `version` of `model` and the champion (none yet: only the challenger) from the
    registry, through the model's own loader, tracking into the model's experiment."""
    from training.tracking import use_tracking

    settings = settings or get_settings()
    use_tracking(settings, model)
    models = {"challenger": load(f"models:/{model}/{version}")}
    champion = champion_version(model, exclude=version)
    if champion is not None:
        models["champion"] = load(f"models:/{model}/{champion}")
    return GateInputs(settings, models, champion)


def champion_version(model: str, exclude: str | None = None) -> str | None:
    """The version behind `model@champion`, or None (none yet, or it is `exclude` itself)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from training.tracking import CHAMPION

    try:
        version = MlflowClient().get_model_version_by_alias(model, CHAMPION).version
    except MlflowException:
        return None
    return None if str(version) == str(exclude) else str(version)


def force_through(decision: dict[str, Any], who: str) -> dict[str, Any]:
    """An engineer's override of a rejection (the training DAGs' `force_promote` param): the
    version becomes the challenger all the same, and its tags say who forced it past what."""
    from training.tracking import CHALLENGER, set_alias, tag_version

    tag_version(decision["model"], decision["version"], {"aisle.gate.forced_by": who})
    set_alias(decision["model"], CHALLENGER, decision["version"])
    log.warning(
        "gate FORCED by %s: %s version %s promoted despite: %s",
        who, decision["model"], decision["version"], "; ".join(decision["reasons"]),
    )  # fmt: skip
    return {**decision, "forced_by": who}
