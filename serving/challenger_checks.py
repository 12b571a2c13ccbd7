"""The promotion's checks of a challenger's slot on live traffic, each a CheckResult (what a
good answer looks like is serving.checks):

    smoke     fixed requests and recent live ones, straight to the fresh slot
    shadow    live traffic mirrored to it (topped up by replaying recent requests to both
              colours): errors, the answers next to the live colour's, p99 latency
    analysis  after the flip, its error rate and p99 on live traffic, for a window

They call the slots with one httpx client, closed on leaving `with ChallengerChecks(...)`.
The thresholds are `Settings.promotion`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import numpy as np

from core.settings import Settings

from .admin import GatewayAdmin
from .checks import CheckResult, compare, sanity, smoke_requests

SMOKE_RECENT = 10  # recent live requests the smoke test replays
RECENT_P99_S = 5  # the analysis judges p99 over the last seconds, errors over the whole window


class ChallengerChecks:
    def __init__(self, settings: Settings, admin: GatewayAdmin) -> None:
        self.policy = settings.promotion
        self.admin = admin
        key = settings.api_keys[0].get_secret_value() if settings.api_keys else None
        self.http = httpx.Client(
            timeout=self.policy.smoke_timeout_s, headers={"X-API-Key": key} if key else {}
        )

    def __enter__(self) -> ChallengerChecks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- smoke -------------------------------------------------------------------------------
    def smoke(self, model: str, url: str) -> CheckResult:
        """Fixed requests and recent live ones, straight to the fresh slot at `url`."""
        problems, latencies = [], []
        requests = smoke_requests(model, self.admin.recent(model, SMOKE_RECENT))
        for path, body, expected in requests:
            status, answer, ms = self._post(url, path, body)
            latencies.append(ms)
            if status not in expected:
                problems.append(f"{path} {json.dumps(body)[:80]}: {status}, expected {expected}")
            elif status == 200:
                problems += [f"{path}: {p}" for p in sanity(model, body, answer)]
        figures = {"requests": len(requests), "max_ms": round(max(latencies), 1)}
        return CheckResult("smoke", not problems, figures, problems)

    # -- shadow ------------------------------------------------------------------------------
    def shadow(self, model: str, live: str, idle: str, url: str) -> CheckResult:
        """Mirror live traffic to the idle colour (topped up by replaying recent requests to
        both) and compare errors, p99 latency and the answers themselves."""
        since = time.time()
        self.admin.shadow(model, idle, self.policy.shadow_share)
        time.sleep(self.policy.shadow_seconds)
        self.admin.shadow(model, None)
        mirrored = self.admin.pairs(model, since)
        live_p99 = self.admin.stats(model, live, since)["p99_ms"]
        missing = self.policy.shadow_min_requests - len(mirrored)
        replayed, live_ms = self._replay(model, live, url, missing) if missing > 0 else ([], [])
        if live_ms:
            live_p99 = float(np.percentile(live_ms, 99))
        pairs = mirrored + replayed
        result = compare(model, pairs, self.policy)
        result.figures.update(mirrored=len(mirrored), replayed=len(replayed))
        self._judge_latency(result, [p["shadow_ms"] for p in pairs], live_p99)
        return result

    def _replay(
        self, model: str, live: str, url: str, n: int
    ) -> tuple[list[dict[str, Any]], list[float]]:
        """Up to `n` recent requests sent to both colours: (pairs like the mirrored ones, the
        live colour's milliseconds)."""
        live_url = self.admin.status()[model]["colours"][live]["url"]
        pairs, live_ms = [], []
        for request in self.admin.recent(model, n):
            live_status, live_answer, lms = self._post(live_url, request["path"], request["body"])
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
            live_ms.append(lms)
        return pairs, live_ms

    def _judge_latency(
        self, result: CheckResult, shadow_ms: list[float], live_p99: float | None
    ) -> None:
        """Fail `result` when the shadow's p99 passes the live colour's times `p99_ratio`
        (at least `p99_floor_ms`)."""
        shadow_p99 = float(np.percentile(shadow_ms, 99)) if shadow_ms else None
        limit = max((live_p99 or 0.0) * self.policy.p99_ratio, self.policy.p99_floor_ms)
        result.figures.update(
            shadow_p99_ms=_round(shadow_p99), live_p99_ms=_round(live_p99),
            p99_limit_ms=round(limit, 1),
        )  # fmt: skip
        if shadow_p99 is not None and shadow_p99 > limit:
            result.problems.append(f"shadow p99 {shadow_p99:.0f} ms > {limit:.0f} ms")
            result.passed = False

    # -- analysis ----------------------------------------------------------------------------
    def analyse(self, model: str, colour: str, flipped_at: float) -> CheckResult:
        """The post-promotion window: the new colour's error rate and p99 on live traffic,
        checked every `analysis_interval_s`; the first breach ends it."""
        policy = self.policy
        deadline = time.time() + policy.analysis_seconds
        while True:
            time.sleep(min(policy.analysis_interval_s, max(deadline - time.time(), 0)))
            total = self.admin.stats(model, colour, flipped_at)
            recent = self.admin.stats(model, colour, max(flipped_at, time.time() - RECENT_P99_S))
            figures = {
                "requests": total["requests"],
                "error_rate": round(total["error_rate"], 4),
                "p99_ms": _round(recent["p99_ms"]),
                "window_s": policy.analysis_seconds,
            }
            problems = self._breaches(total, recent)
            if problems:
                figures["seconds_after_flip"] = round(time.time() - flipped_at, 1)
                return CheckResult("analysis", False, figures, problems)
            if time.time() >= deadline:
                if total["requests"] < policy.analysis_min_requests:  # too quiet to judge
                    figures["inconclusive"] = f"fewer than {policy.analysis_min_requests} requests"
                return CheckResult("analysis", True, figures)

    def _breaches(self, total: dict[str, Any], recent: dict[str, Any]) -> list[str]:
        """The error rate since the flip and the recent p99 against the policy's limits."""
        policy = self.policy
        problems = []
        if total["requests"] and total["error_rate"] > policy.max_error_rate:
            problems.append(f"error rate {total['error_rate']:.1%} > {policy.max_error_rate:.1%}")
        if recent["requests"] >= policy.analysis_min_requests and (
            recent["p99_ms"] > policy.max_p99_ms
        ):
            problems.append(f"p99 {recent['p99_ms']:.0f} ms > {policy.max_p99_ms:.0f} ms")
        return problems

    def _post(self, url: str, path: str, body: Any) -> tuple[int, Any, float]:
        """(status, answer, milliseconds); status 0 and the error when nothing answered."""
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


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
