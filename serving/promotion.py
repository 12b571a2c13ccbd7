"""Blue-green promotion with analysis and automatic rollback (Argo Rollouts' blue-green, on our
slots and gateway): the steps that move traffic. The checks on the way are
serving.challenger_checks.

    promote(model, version)   challenger -> idle colour -> ready -> smoke -> shadow -> flip ->
                              analysis window -> `champion` alias; any failed check stops it:
                              before the flip the live colour never stopped serving, after it
                              the traffic goes straight back (rollback)
    rollback(model)           the other colour takes the traffic again, at once

Every step, decision and reason is written to the audit log before its effect
(core.audit). The thresholds are `Settings.promotion` (AISLE_PROMOTION__*).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from core.audit import AuditLog
from core.settings import Settings

from .admin import GatewayAdmin
from .challenger_checks import ChallengerChecks
from .checks import CheckResult
from .routing import other
from .slots import Slot, SlotFailed, Slots

FIRST_COLOUR = "blue"  # where a model's first version goes live


class PromotionError(RuntimeError):
    """Promotion cannot start (no live colour, no such version); nothing was changed."""


@dataclass
class Outcome:
    model: str
    version: str
    previous_version: str | None
    result: str  # promoted | rejected | rolled_back | unchanged
    reason: str
    colour: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Attempt:
    """One promotion under way: its outcome so far, each step written to the audit log."""

    outcome: Outcome
    audit: AuditLog
    started: float  # time.monotonic() when the promotion was asked for

    def log(self, step: str, **details: Any) -> None:
        self.audit.write(
            self.outcome.model,
            "promote",
            step,
            version=self.outcome.version,
            previous_version=self.outcome.previous_version,
            **details,
        )

    def passed(self, result: CheckResult) -> bool:
        """Record a check's result in the outcome and the audit log."""
        self.outcome.checks.append(result.to_dict())
        self.log(result.name, **result.to_dict())
        return result.passed

    def end(self, result: str, reason: str) -> Outcome:
        self.outcome.result, self.outcome.reason = result, reason
        self.outcome.seconds = time.monotonic() - self.started
        return self.outcome


class Promoter:
    def __init__(
        self, settings: Settings, slots: Slots, admin: GatewayAdmin, audit: AuditLog
    ) -> None:
        from training.tracking import point_at_store

        self.settings = settings
        self.policy = settings.promotion
        self.slots = slots
        point_at_store(settings)  # the aliases it moves live in the settings' registry
        self.admin = admin
        self.audit = audit

    # -- promote -----------------------------------------------------------------------------
    def promote(self, model: str, version: str | None = None) -> Outcome:
        started = time.monotonic()
        version = str(version or challenger_version(self.settings, model))
        running = self.admin.experiments().get(model)
        if running and running["status"] == "running":  # its challenger holds the idle colour
            raise PromotionError(
                f"{model} runs experiment {running['id']}: `aisle experiment stop {model}` first"
            )
        route = self.admin.status()[model]
        live = route["active"]
        live_version = route["colours"][live]["version"] if live is not None else None
        if live is not None and version == live_version:
            self.audit.write(
                model, "promote", "skipped", version=version, reason="this version is already live"
            )
            return Outcome(model, version, live_version, "unchanged", "already live", live)
        with ChallengerChecks(self.settings, self.admin) as checks:
            if live is None:
                return self._first(checks, model, version, started)
            return self._blue_green(checks, model, version, live, live_version, started)

    def _blue_green(
        self,
        checks: ChallengerChecks,
        model: str,
        version: str,
        live: str,
        live_version: str | None,
        started: float,
    ) -> Outcome:
        idle = other(live)
        attempt = Attempt(Outcome(model, version, live_version, "rejected", "", idle),
                          self.audit, started)  # fmt: skip
        attempt.log("start", live_colour=live, idle_colour=idle, live_version=live_version)
        slot = self._deploy(attempt)
        if slot is None:
            return attempt.outcome
        before_flip = (
            lambda: checks.smoke(model, slot.url),
            lambda: checks.shadow(model, live, idle, slot.url),
        )
        for run_check in before_flip:
            result = run_check()
            if not attempt.passed(result):
                return self._reject(attempt, result.name, "; ".join(result.problems))
        attempt.log("switch", before=live, after=idle)
        flipped = self._route_to(model, idle)
        result = checks.analyse(model, idle, flipped["at"])
        if not attempt.passed(result):
            return self._roll_back(attempt, live, "; ".join(result.problems))
        return self._crown(attempt, live_version)

    def _first(self, checks: ChallengerChecks, model: str, version: str, started: float) -> Outcome:
        """The model's first version: no live colour to shadow or fall back to, so it goes live
        in blue after its smoke test (the gate already held it to its floors)."""
        colour = FIRST_COLOUR
        attempt = Attempt(
            Outcome(model, version, None, "rejected", "", colour), self.audit, started
        )
        attempt.log("start", live_colour=None, idle_colour=colour, live_version=None, first=True)
        slot = self._deploy(attempt)
        if slot is None:
            return attempt.outcome
        result = checks.smoke(model, slot.url)
        if not attempt.passed(result):
            return self._reject(attempt, result.name, "; ".join(result.problems))
        attempt.log("switch", before=None, after=colour)
        self._route_to(model, colour)
        return self._crown(attempt, None)

    def _deploy(self, attempt: Attempt) -> Slot | None:
        """The challenger started in the attempt's colour, ready, and known to the gateway;
        None when it did not start (the attempt is then rejected)."""
        outcome = attempt.outcome
        try:
            slot = self.slots.deploy(outcome.model, outcome.colour, outcome.version)
            self.slots.wait_ready(slot, self.policy.ready_timeout_s)
        except SlotFailed as exc:
            self._reject(attempt, "deploy", str(exc)[-2000:])
            return None
        self.admin.set_slot(outcome.model, outcome.colour, slot.url)
        attempt.log("deployed", url=slot.url)
        return slot

    def _reject(self, attempt: Attempt, step: str, reason: str) -> Outcome:
        """Before the flip: the challenger's colour is unshadowed, removed and stopped."""
        outcome = attempt.end("rejected", f"{step}: {reason}")
        attempt.log("rejected", failed=step, reason=reason)
        try:
            self.admin.shadow(outcome.model, None)
            self.admin.set_slot(outcome.model, outcome.colour, None)
        finally:
            self.slots.stop(outcome.model, outcome.colour)
        return outcome

    def _roll_back(self, attempt: Attempt, live: str, reason: str) -> Outcome:
        """After the flip: the traffic goes straight back to the colour that had it."""
        attempt.log("rollback", before=attempt.outcome.colour, after=live, reason=reason)
        self._route_to(attempt.outcome.model, live)
        outcome = attempt.end("rolled_back", reason)
        attempt.log("rolled_back", reason=outcome.reason)
        return outcome

    def _crown(self, attempt: Attempt, live_version: str | None) -> Outcome:
        """The `champion` alias moves to the version that now takes the traffic."""
        from training.tracking import CHAMPION, set_alias

        outcome = attempt.outcome
        set_alias(
            outcome.model,
            CHAMPION,
            outcome.version,
            {"promoted_by": self.audit.who, "promoted_from": str(live_version)},
        )
        attempt.end("promoted", "every check passed")
        attempt.log("promoted", champion=outcome.version)
        return outcome

    def _route_to(self, model: str, colour: str) -> dict[str, Any]:
        """`colour` takes the model's traffic: at the gateway, then in the slots' records."""
        flipped = self.admin.switch(model, colour)
        self.slots.switch(model, colour)
        return flipped

    # -- rollback ----------------------------------------------------------------------------
    def rollback(self, model: str) -> Outcome:
        """Send the traffic back to the other colour now; the champion alias follows it."""
        route = self.admin.status()[model]
        live = route["active"]
        if live is None:
            raise PromotionError(f"{model} has no live colour")
        back = other(live)
        colour = route["colours"][back]
        if not colour["url"] or not colour["ready"]:
            raise PromotionError(
                f"{model} has no ready {back} colour to go back to (it was stopped or never "
                "deployed); promote a version instead"
            )
        version, previous = colour["version"], route["colours"][live]["version"]
        self.audit.write(
            model,
            "rollback",
            "switch",
            before=live,
            after=back,
            version=version,
            previous_version=previous,
        )
        self._route_to(model, back)
        if version:
            from training.tracking import CHAMPION, set_alias

            set_alias(model, CHAMPION, version, {"rolled_back_by": self.audit.who})
        self.audit.write(model, "rollback", "done", version=version, previous_version=previous)
        return Outcome(model, str(version), previous, "rolled_back", "by hand", back)


def challenger_version(settings: Settings, model: str) -> str:
    from mlflow import MlflowClient

    from training.tracking import CHALLENGER, point_at_store

    point_at_store(settings)
    try:
        return MlflowClient().get_model_version_by_alias(model, CHALLENGER).version
    except Exception as exc:  # mlflow raises its own types for a missing model or alias
        raise PromotionError(f"no {model}@{CHALLENGER} in the registry: {exc}") from None
