"""The experiment monitor's steps, one code path for the `experiment_monitor` DAG, the CLI and the
tests (the gateway's experiments are read over its admin API, the statistics are monitoring's,
the promotion serving's; this floor is where the three meet).

    decide_step(settings)            each experiment still to decide: its analysis at this look,
                                     the HTML report (and MLflow), the decision and why
    act_step(settings, decisions)    every decision other than "continue" carried out: promote
                                     (the experiment's decision moves the `champion` alias) or
                                     stop (the champion keeps every unit)
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from core.audit import AuditLog
from core.settings import Settings

CONTINUE = "continue"
log = logging.getLogger(__name__)


def _gateway_up(settings: Settings) -> bool:
    """Whether the gateway answers at all (a wrong token still fails the task, loudly)."""
    import httpx

    try:
        return httpx.get(settings.gateway_url + "/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _to_decide(settings: Settings, experiments: dict[str, Any]) -> list[dict[str, Any]]:
    """Running experiments, and those the gateway ended on a guardrail that nobody concluded."""
    found = []
    audit = AuditLog(settings)
    for experiment in experiments.values():
        if experiment is None:
            continue
        if experiment["status"] == "running":
            found.append(experiment)
            continue
        concluded = any(
            e.get("experiment") == experiment["id"] and e["step"] == "decision"
            for e in audit.entries(experiment["model"])
        )
        if not concluded and str(experiment.get("ended_reason", "")).startswith("guardrail"):
            found.append(experiment)
    return found


def decide_step(settings: Settings, looks: list[pd.Timestamp] | None = None) -> list[dict]:
    """The decision of every experiment to decide, at `looks` (None: one per day since its start
    and one now), with its report (HTML and MLflow run, written by the analysis)."""
    from monitoring.experiment_analysis import analyse_experiment
    from serving.admin import GatewayAdmin

    if not _gateway_up(settings):
        log.warning("no gateway at %s: no experiment to decide", settings.gateway_url)
        return []
    decisions = []
    for experiment in _to_decide(settings, GatewayAdmin(settings).experiments()):
        analysis = analyse_experiment(settings, experiment, looks)  # writes the report too
        decision = analysis.decision
        action, reason = decision.action, decision.reason
        if experiment["status"] != "running":  # the gateway already ended it on a guardrail
            action, reason = "stop_guardrail", experiment["ended_reason"]
        decisions.append(
            {
                "model": experiment["model"],
                "experiment": experiment["id"],
                "version": experiment["treatment_version"],
                "action": action,
                "reason": reason,
                "look": decision.look,
                "report": str(analysis.report),
                "mlflow_run_id": analysis.mlflow_run_id,
            }
        )
    return decisions


def act_step(settings: Settings, decisions: list[dict], who: str | None = None) -> list[dict]:
    """Carry out each decision that ends an experiment; returns the outcomes (with `result`, for
    the audit link) beside the decisions that continue."""
    from serving.deploy import conclude_experiment_step

    done = []
    for decision in decisions:
        if decision["action"] == CONTINUE:
            done.append({**decision, "result": "continues"})
            continue
        outcome = conclude_experiment_step(
            decision["model"], decision["action"], decision["reason"], settings, who
        )
        done.append({**decision, **outcome, "action": decision["action"]})
    return done
