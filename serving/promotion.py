"""Blue-green promotion with analysis and automatic rollback (Argo Rollouts' blue-green, on our
slots and gateway).

    promote(model, version)   challenger -> idle colour -> ready -> smoke -> shadow -> flip ->
                              analysis window -> `champion` alias; any failed check stops it:
                              before the flip the live colour never stopped serving, after it
                              the traffic goes straight back (rollback)
    rollback(model)           the other colour takes the traffic again, at once

Every step, decision and reason is written to the audit log before its effect
(core.audit). The thresholds are `Settings.promotion` (AISLE_PROMOTION__*).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import numpy as np

from core.audit import AuditLog
from core.settings import Settings

from .admin import GatewayAdmin
from .checks import CheckResult, compare, sanity, smoke_requests
from .gateway import other
from .slots import SlotFailed, Slots


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
        key = settings.api_keys[0].get_secret_value() if settings.api_keys else None
        self.http = httpx.Client(
            timeout=self.policy.smoke_timeout_s, headers={"X-API-Key": key} if key else {}
        )

    # -- promote -----------------------------------------------------------------------------
    def promote(self, model: str, version: str | None = None) -> Outcome:
        started = time.monotonic()
        version = str(version or challenger_version(self.settings, model))
        route = self.admin.status()[model]
        live = route["active"]
        if live is None:
            return self._first(model, version, started)
        live_version = route["colours"][live]["version"]
        if version == live_version:
            self.audit.write(
                model, "promote", "skipped", version=version, reason="this version is already live"
            )
            return Outcome(model, version, live_version, "unchanged", "already live", live)
        idle = other(live)
        outcome = Outcome(model, version, live_version, "rejected", "", idle)
        log = self._logger(outcome)
        log("start", live_colour=live, idle_colour=idle, live_version=live_version)

        try:
            slot = self.slots.deploy(model, idle, version)
            self.slots.wait_ready(slot, self.policy.ready_timeout_s)
        except SlotFailed as exc:
            return self._reject(outcome, log, "deploy", str(exc)[-2000:], started)
        self.admin.set_slot(model, idle, slot.url)
        log("deployed", url=slot.url)

        for check in (self._smoke, self._shadow):
            result = check(model, live, idle, slot.url)
            outcome.checks.append(result.to_dict())
            log(result.name, **result.to_dict())
            if not result.passed:
                return self._reject(outcome, log, result.name, "; ".join(result.problems), started)

        log("switch", before=live, after=idle)
        flipped = self.admin.switch(model, idle)
        self.slots.switch(model, idle)
        result = self._analyse(model, idle, flipped["at"])
        outcome.checks.append(result.to_dict())
        log(result.name, **result.to_dict())
        if not result.passed:
            log("rollback", before=idle, after=live, reason="; ".join(result.problems))
            self.admin.switch(model, live)
            self.slots.switch(model, live)
            outcome.result, outcome.reason = "rolled_back", "; ".join(result.problems)
            outcome.seconds = time.monotonic() - started
            log("rolled_back", reason=outcome.reason)
            return outcome

        return self._crown(outcome, log, live_version, started)

    def _first(self, model: str, version: str, started: float) -> Outcome:
        """The model's first version: no live colour to shadow or fall back to, so it goes live
        in blue after its smoke test (the gate already held it to its floors)."""
        colour = "blue"
        outcome = Outcome(model, version, None, "rejected", "", colour)
        log = self._logger(outcome)
        log("start", live_colour=None, idle_colour=colour, live_version=None, first=True)
        try:
            slot = self.slots.deploy(model, colour, version)
            self.slots.wait_ready(slot, self.policy.ready_timeout_s)
        except SlotFailed as exc:
            return self._reject(outcome, log, "deploy", str(exc)[-2000:], started)
        self.admin.set_slot(model, colour, slot.url)
        log("deployed", url=slot.url)
        result = self._smoke(model, colour, colour, slot.url)
        outcome.checks.append(result.to_dict())
        log(result.name, **result.to_dict())
        if not result.passed:
            return self._reject(outcome, log, result.name, "; ".join(result.problems), started)
        log("switch", before=None, after=colour)
        self.admin.switch(model, colour)
        self.slots.switch(model, colour)
        return self._crown(outcome, log, None, started)

    def _crown(self, outcome: Outcome, log, live_version: str | None, started: float) -> Outcome:
        """The `champion` alias moves to the version that now takes the traffic."""
        from training.tracking import CHAMPION, set_alias

        set_alias(
            outcome.model,
            CHAMPION,
            outcome.version,
            {"promoted_by": self.audit.who, "promoted_from": str(live_version)},
        )
        outcome.result, outcome.reason = "promoted", "every check passed"
        outcome.seconds = time.monotonic() - started
        log("promoted", champion=outcome.version)
        return outcome

    def _logger(self, outcome: Outcome):
        def log(step: str, **details: Any) -> None:
            self.audit.write(
                outcome.model,
                "promote",
                step,
                version=outcome.version,
                previous_version=outcome.previous_version,
                **details,
            )

        return log

    def _reject(self, outcome: Outcome, log, step: str, reason: str, started: float) -> Outcome:
        outcome.reason = f"{step}: {reason}"
        outcome.seconds = time.monotonic() - started
        log("rejected", failed=step, reason=reason)
        try:
            self.admin.shadow(outcome.model, None)
            self.admin.set_slot(outcome.model, outcome.colour, None)
        finally:
            self.slots.stop(outcome.model, outcome.colour)
        return outcome

    # -- checks ------------------------------------------------------------------------------
    def _smoke(self, model: str, live: str, idle: str, url: str) -> CheckResult:
        """Fixed requests and recent live ones, straight to the fresh slot."""
        problems, latencies = [], []
        requests = smoke_requests(model, self.admin.recent(model, 10))
        for path, body, expected in requests:
            status, answer, ms = self._post(url, path, body)
            latencies.append(ms)
            if status not in expected:
                problems.append(f"{path} {json.dumps(body)[:80]}: {status}, expected {expected}")
            elif status == 200:
                problems += [f"{path}: {p}" for p in sanity(model, body, answer)]
        figures = {"requests": len(requests), "max_ms": round(max(latencies), 1)}
        return CheckResult("smoke", not problems, figures, problems)

    def _shadow(self, model: str, live: str, idle: str, url: str) -> CheckResult:
        """Mirror live traffic to the idle colour (topped up by replaying recent requests to
        both) and compare errors, p99 latency and the answers themselves."""
        policy = self.policy
        since = time.time()
        self.admin.shadow(model, idle, policy.shadow_share)
        time.sleep(policy.shadow_seconds)
        self.admin.shadow(model, None)
        pairs = self.admin.pairs(model, since)
        shadow_ms = [p["shadow_ms"] for p in pairs]
        live_window = self.admin.stats(model, live, since)
        live_p99 = live_window["p99_ms"]
        replayed = 0
        if len(pairs) < policy.shadow_min_requests:
            live_url = self.admin.status()[model]["colours"][live]["url"]
            live_ms = []
            for request in self.admin.recent(model, policy.shadow_min_requests - len(pairs)):
                live_status, live_answer, lms = self._post(
                    live_url, request["path"], request["body"]
                )
                status, answer, ms = self._post(url, request["path"], request["body"])
                pairs.append(
                    {
                        "path": request["path"],
                        "request": request["body"],
                        "live_status": live_status,
                        "live": live_answer,
                        "shadow_status": status,
                        "shadow": answer,
                        "shadow_ms": ms,
                    }
                )
                shadow_ms.append(ms)
                live_ms.append(lms)
                replayed += 1
            if live_ms:
                live_p99 = float(np.percentile(live_ms, 99))
        result = compare(model, pairs, policy)
        shadow_p99 = float(np.percentile(shadow_ms, 99)) if shadow_ms else None
        limit = max((live_p99 or 0.0) * policy.p99_ratio, policy.p99_floor_ms)
        result.figures.update(
            mirrored=len(pairs) - replayed,
            replayed=replayed,
            shadow_p99_ms=_round(shadow_p99),
            live_p99_ms=_round(live_p99),
            p99_limit_ms=round(limit, 1),
        )
        if shadow_p99 is not None and shadow_p99 > limit:
            result.problems.append(f"shadow p99 {shadow_p99:.0f} ms > {limit:.0f} ms")
            result.passed = False
        return result

    def _analyse(self, model: str, colour: str, flipped_at: float) -> CheckResult:
        """The post-promotion window: the new colour's error rate and p99 on live traffic,
        checked every `analysis_interval_s`; the first breach ends it."""
        policy = self.policy
        deadline = time.time() + policy.analysis_seconds
        worst: dict[str, Any] = {"requests": 0}
        while True:
            time.sleep(min(policy.analysis_interval_s, max(deadline - time.time(), 0)))
            total = self.admin.stats(model, colour, flipped_at)
            recent = self.admin.stats(model, colour, max(flipped_at, time.time() - 5))
            worst = {
                "requests": total["requests"],
                "error_rate": round(total["error_rate"], 4),
                "p99_ms": _round(recent["p99_ms"]),
                "window_s": policy.analysis_seconds,
            }
            problems = []
            if total["requests"] and total["error_rate"] > policy.max_error_rate:
                problems.append(
                    f"error rate {total['error_rate']:.1%} > {policy.max_error_rate:.1%}"
                )
            if recent["requests"] >= policy.analysis_min_requests and (
                recent["p99_ms"] > policy.max_p99_ms
            ):
                problems.append(f"p99 {recent['p99_ms']:.0f} ms > {policy.max_p99_ms:.0f} ms")
            if problems:
                worst["seconds_after_flip"] = round(time.time() - flipped_at, 1)
                return CheckResult("analysis", False, worst, problems)
            if time.time() >= deadline:
                if total["requests"] < policy.analysis_min_requests:  # too quiet to judge
                    worst["inconclusive"] = f"fewer than {policy.analysis_min_requests} requests"
                return CheckResult("analysis", True, worst)

    def _post(self, url: str, path: str, body: Any) -> tuple[int, Any, float]:
        started = time.perf_counter()
        try:
            response = self.http.post(url + path, json=body)
            status = response.status_code
            try:
                answer = response.json()
            except ValueError:
                answer = response.text[:200]
        except httpx.HTTPError as exc:
            status, answer = 0, str(exc)
        return status, answer, (time.perf_counter() - started) * 1000

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
        self.admin.switch(model, back)
        self.slots.switch(model, back)
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


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
