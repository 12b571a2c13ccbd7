"""Starting and ending an online experiment: what `aisle experiment start|stop`, the
`promote_model` DAG in experiment mode and the `experiment_monitor` DAG call.

    start(model, version, share, metric)   the challenger deployed to the idle colour, ready,
                                           smoke-tested, then the gateway splits the units
                                           between the champion (control) and it (treatment)
    conclude(model, action, reason)        "promote": every unit to the challenger's colour and
                                           the `champion` alias to its version, because the
                                           experiment said so; anything else: every unit back
                                           to the champion and the challenger's slot stopped

Every step, decision and reason goes to the audit log (action "experiment"). The gateway itself
ends an experiment whose challenger breaks a guardrail (serving.experiments); `conclude` then
only tidies the challenger's slot away.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from core.settings import METRICS, UNITS

from .challenger_checks import ChallengerChecks
from .promotion import Attempt, Outcome, Promoter, PromotionError, challenger_version
from .routing import other

PROMOTE = "promote"


class ExperimentRunner(Promoter):
    """Experiments on the blue-green cluster: the promoter's deploy, smoke and crown steps, with
    an experiment between deploy and crown instead of shadow, flip and analysis."""

    def start(
        self,
        model: str,
        version: str | None = None,
        share: float | None = None,
        metric: str | None = None,
        guardrail_metrics: list[str] | None = None,
    ) -> dict[str, Any]:
        policy = self.settings.experiments
        share = policy.share if share is None else share
        metric = metric or policy.primary_metric[model]
        guards = policy.guardrail_metrics.get(model, []) if guardrail_metrics is None else (
            guardrail_metrics)  # fmt: skip
        for name in [metric, *guards]:
            if name not in METRICS[model]:
                raise PromotionError(
                    f"{model} experiments are judged on {', '.join(METRICS[model])}, not {name!r}"
                )
        if not 0 < share < 1:
            raise PromotionError(f"share must be between 0 and 1, not {share}")
        running = self.admin.experiments()[model]
        if running and running["status"] == "running":
            raise PromotionError(f"{model} already runs experiment {running['id']}; stop it first")
        version = str(version or challenger_version(self.settings, model))
        route = self.admin.status()[model]
        live = route["active"]
        if live is None:
            raise PromotionError(
                f"{model} has no live version to compare with: promote a first one"
            )
        if route["colours"][live].get("ready") is False:  # None: not probed yet
            raise PromotionError(
                f"{model}'s live colour {live} is not answering: its shoppers would fail over to "
                f"the challenger and the control arm would be lost. Bring it back with "
                f"`aisle serve up` first"
            )
        live_version = route["colours"][live]["version"] or self._champion_version(model)
        live_version = None if live_version is None else str(live_version)
        if str(live_version) == version:
            raise PromotionError(f"{model} version {version} is already live")
        idle = other(live)
        attempt = Attempt(
            Outcome(model, version, live_version, "rejected", "", idle),
            self.audit,
            time.monotonic(),
        )
        attempt.log("experiment_deploy", live_colour=live, idle_colour=idle)
        slot = self._deploy(attempt)
        if slot is None:
            raise PromotionError(f"the challenger did not start: {attempt.outcome.reason}")
        with ChallengerChecks(self.settings, self.admin) as checks:
            result = checks.smoke(model, slot.url)
        if not attempt.passed(result):
            self._reject(attempt, result.name, "; ".join(result.problems))
            raise PromotionError(f"the challenger failed its smoke test: {attempt.outcome.reason}")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        experiment = {
            "id": f"{model}-v{version}-{stamp}",
            "model": model,
            "treatment": idle,
            "share": share,
            "metric": metric,
            "guardrail_metrics": guards,
            "control_version": live_version,
            "treatment_version": version,
            "unit": UNITS[model],
        }
        details = {k: v for k, v in experiment.items() if k not in ("model", "id")}
        self.audit.write(model, "experiment", "started", experiment=experiment["id"],
                         version=version, previous_version=live_version,
                         **{k: v for k, v in details.items() if "version" not in k})  # fmt: skip
        return self.admin.start_experiment(experiment)

    def _champion_version(self, model: str) -> str | None:
        """The registry's champion: what the live colour serves when the gateway has not probed
        it yet (right after `serve up`)."""
        from mlflow import MlflowClient

        from training.tracking import CHAMPION

        try:
            return MlflowClient().get_model_version_by_alias(model, CHAMPION).version
        except Exception:  # mlflow raises its own types for a missing model or alias
            return None

    def conclude(self, model: str, action: str, reason: str) -> dict[str, Any]:
        """End the model's latest experiment by its decision (`action`: promote, or any stop)."""
        experiment = self.admin.experiments()[model]
        if experiment is None:
            raise PromotionError(f"{model} has no experiment")
        version = experiment["treatment_version"]
        details = {"experiment": experiment["id"], "version": version,
                   "previous_version": experiment["control_version"]}  # fmt: skip
        self.audit.write(model, "experiment", "decision", decided=action, reason=reason, **details)
        if experiment["status"] == "running":
            winner = "treatment" if action == PROMOTE else "control"
            self.admin.end_experiment(model, f"{action}: {reason}", winner)
        elif action == PROMOTE:
            raise PromotionError(
                f"experiment {experiment['id']} already ended ({experiment['ended_reason']}); "
                "its challenger cannot be promoted"
            )
        if action == PROMOTE:
            self.slots.switch(model, experiment["treatment"])
            attempt = Attempt(
                Outcome(model, version, experiment["control_version"], "promoted", reason,
                        experiment["treatment"]),
                self.audit,
                time.monotonic(),
            )  # fmt: skip
            outcome = self._crown(attempt, experiment["control_version"])
            outcome.reason = f"experiment {experiment['id']}: {reason}"
            self.audit.write(model, "experiment", "promoted", champion=version, **details)
            return outcome.to_dict()
        self.admin.set_slot(model, experiment["treatment"], None)
        self.slots.stop(model, experiment["treatment"])
        self.audit.write(model, "experiment", "stopped", decided=action, **details)
        return Outcome(model, str(version), experiment["control_version"], "rejected",
                       f"experiment {experiment['id']}: {action}: {reason}",
                       experiment["control"]).to_dict()  # fmt: skip
