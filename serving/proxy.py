"""The gateway's core: what it knows (the routing table, each slot's health, per-colour stats,
recent requests, mirrored pairs, metrics) and how it answers a scoring request.

A request goes to its model's live colour, or to the other colour while the live one is known to
be down; when the chosen slot does not answer at all it is marked down and the request is sent
once more to the other colour (scoring is idempotent). Every answer is recorded per colour for the
promotion's checks, and a share of requests is mirrored to a shadow colour (serving.mirroring).
While the model has a running experiment, the request goes to its unit's arm instead (a batch is
split by arm), the arm is written to the answer log, and the guardrails are watched
(serving.experiments).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, deque
from dataclasses import replace
from typing import Any

from aiohttp import ClientSession, web

from core.settings import Settings

from .answer_log import AnswerLog, new_request_id
from .events import StreamLink
from .experiments import Experiment, arm_of, merge_batch, quote_violations, split_batch, unit_of
from .forwarding import forward, forwarded_headers
from .gateway_metrics import GatewayMetrics
from .mirroring import Mirroring
from .routing import MODELS, SCORING_PATHS, Route, load_routes, other, save_routes
from .slot_health import SlotHealth
from .stats import Stats

KEEP_RECENT = 2_000  # recent answered requests per model: the promotion's smoke and replays
BATCH_PATHS = ("/recommend_batch", "/price_batch")
GUARDRAIL_EVERY_S = 2.0
log = logging.getLogger("aisle.gateway")


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


REQUEST_ID = "X-Request-Id"


def _request_id(headers: dict[str, str]) -> str:
    """The caller's X-Request-Id when it is a usable id, else a new one; set on `headers` so the
    slot sees it too. It names the answer in the answer log (serving.answer_log)."""
    given = next((v for k, v in headers.items() if k.lower() == "x-request-id"), "")
    request_id = given if 0 < len(given) <= 128 and given.isprintable() and " " not in given else ""
    request_id = request_id or new_request_id()
    for key in [k for k in headers if k.lower() == "x-request-id"]:
        del headers[key]
    headers[REQUEST_ID] = request_id
    return request_id


def probe_headers(settings: Settings) -> dict[str, str]:
    keys = [k.get_secret_value() for k in settings.api_keys]
    return {"X-API-Key": keys[0]} if keys else {}


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.routes: dict[str, Route] = load_routes(settings)
        self.health = SlotHealth(probe_headers(settings))
        self.stats = Stats()
        self.recent: dict[str, deque[tuple[str, bytes]]] = {
            m: deque(maxlen=KEEP_RECENT) for m in MODELS
        }
        self.mirroring = Mirroring(self.forward, self.record)
        self.session: ClientSession | None = None  # opened with the application
        self.metrics = GatewayMetrics()
        self.metrics.show_live(self.routes)
        self.stream = StreamLink(settings)
        self.answers = AnswerLog(settings, self.metrics.answers_dropped)
        self.quote_violations: Counter[str] = Counter()  # experiment id -> challenger breaches

    def set_route(self, model: str, **changes: Any) -> Route:
        self.routes[model] = replace(self.routes[model], **changes)
        save_routes(self.settings, self.routes)
        self.metrics.show_live(self.routes)
        return self.routes[model]

    async def score(self, request: web.Request) -> web.Response:
        path = request.path
        model = SCORING_PATHS[path]
        route = self.routes[model]  # read once: a switch mid-request does not move it
        body = await request.read()
        headers = forwarded_headers(request)
        request_id = _request_id(headers)
        experiment = route.running_experiment
        if experiment is not None:
            return await self._score_in_experiment(
                experiment, route, path, body, headers, request_id
            )
        colour = self._choose(model, route)
        if colour is None:
            return error_response(503, f"no {model} slot is live; run `aisle serve up`")
        status, payload, colour = await self._answer(model, route, colour, path, body, headers)
        if status and status < 400:
            self._after_answer(path, model, colour, request_id, body, payload, status)
        self.mirroring.maybe_mirror(model, route, path, body, headers, status, payload)
        return self._reply(model, status, payload, request_id)

    def _reply(self, model: str, status: int, payload: bytes, request_id: str) -> web.Response:
        if status == 0:
            return error_response(503, f"no {model} slot answered; retry shortly")
        return web.Response(
            body=payload,
            status=status,
            content_type="application/json",
            headers={REQUEST_ID: request_id},
        )

    def _after_answer(
        self,
        path: str,
        model: str,
        colour: str,
        request_id: str,
        body: bytes,
        payload: bytes,
        status: int,
        experiment: Experiment | None = None,
        arm: str | None = None,
        positions: list[int] | None = None,
    ) -> None:
        """Keep the request for replays and log the answer, scheduled, not awaited: parsing the
        answer does not hold this one up."""
        self.recent[model].append((path, body))
        loop = asyncio.get_running_loop()
        loop.call_soon(
            self.answers.log, path, model, colour, request_id, body, payload, status,
            arm, experiment.id if experiment else None, positions,
        )  # fmt: skip
        if experiment is not None and arm == "treatment" and model == "pricing":
            loop.call_soon(self._check_quotes, experiment, path, body, payload)

    # -- experiments ---------------------------------------------------------------------------
    async def _score_in_experiment(
        self,
        experiment: Experiment,
        route: Route,
        path: str,
        body: bytes,
        headers: dict,
        request_id: str,
    ) -> web.Response:
        """Each unit to its arm's colour; a batch with units in both arms is split and merged."""
        model = experiment.model
        if path in BATCH_PATHS:
            parts = split_batch(experiment, body)
            if parts is not None and len(parts) > 1:
                return await self._split_answer(experiment, route, path, parts, headers, request_id)
            arm = next(iter(parts)) if parts else "control"
        else:
            try:
                arm = arm_of(experiment.id, unit_of(model, json.loads(body)), experiment.share)
            except ValueError:
                arm = "control"  # not JSON: the slot answers the 400
        colour = self._arm_colour(experiment, route, arm)
        status, payload, colour = await self._answer(model, route, colour, path, body, headers)
        if status and status < 400:
            self._after_answer(
                path, model, colour, request_id, body, payload, status, experiment, arm
            )
        return self._reply(model, status, payload, request_id)

    async def _split_answer(
        self,
        experiment: Experiment,
        route: Route,
        path: str,
        parts: dict[str, tuple[list[int], bytes]],
        headers: dict,
        request_id: str,
    ) -> web.Response:
        model = experiment.model
        arms = list(parts)
        answers = await asyncio.gather(
            *(
                self._answer(model, route, self._arm_colour(experiment, route, arm), path,
                             parts[arm][1], headers)
                for arm in arms
            )
        )  # fmt: skip
        failed = next((a for a in answers if not a[0] or a[0] >= 400), None)
        if failed is not None:  # one part failed: the caller retries the whole batch
            return self._reply(model, failed[0], failed[1], request_id)
        payloads = {}
        for arm, (status, payload, colour) in zip(arms, answers, strict=True):
            positions, body = parts[arm]
            payloads[arm] = (positions, payload)
            self._after_answer(
                path, model, colour, request_id, body, payload, status, experiment, arm, positions
            )
        merged = merge_batch(path, payloads)
        return self._reply(model, 200, merged, request_id)

    def _arm_colour(self, experiment: Experiment, route: Route, arm: str) -> str:
        """The arm's colour, or the other one while it is known to be down (failover)."""
        colour = experiment.colour_of(arm)
        spare = other(colour)
        down = not self.health.ready(experiment.model, colour)
        if down and spare in route.slots and self.health.ready(experiment.model, spare):
            self.metrics.failed_over(experiment.model)
            return spare
        return colour

    def _check_quotes(self, experiment: Experiment, path: str, body: bytes, payload: bytes) -> None:
        try:
            asked, answer = json.loads(body), json.loads(payload)
        except ValueError:
            return
        if path == "/price":
            pairs = [(asked, answer)]
        else:
            pairs = list(zip(asked.get("requests") or [], answer.get("results") or [],
                             strict=False))  # fmt: skip
        broken = sum(1 for a, q in pairs if quote_violations(a, q))
        if broken:
            self.quote_violations[experiment.id] += broken

    def guardrail_breach(self, experiment: Experiment) -> str | None:
        """Why the challenger must stop now, or None: its error rate or p99 over the trailing
        window (once it has enough requests), or its quotes outside their guardrails."""
        policy, limits = self.settings.experiments, self.settings.promotion
        since = max(experiment.started_at, time.time() - policy.guardrail_window_s)
        window = self.stats.window(experiment.model, experiment.treatment, "live", since)
        if window.requests >= policy.guardrail_min_requests:
            if window.error_rate > limits.max_error_rate:
                return (f"challenger error rate {window.error_rate:.1%} > "
                        f"{limits.max_error_rate:.1%} over {window.requests} requests")  # fmt: skip
            if window.p99_ms is not None and window.p99_ms > limits.max_p99_ms:
                return f"challenger p99 {window.p99_ms:.0f} ms > {limits.max_p99_ms:.0f} ms"
        broken = self.quote_violations[experiment.id]
        if broken > policy.max_quote_violations:
            return f"{broken} challenger quotes outside their guardrails"
        return None

    def end_experiment(self, model: str, reason: str, winner: str = "control") -> Route:
        """End the model's experiment: every unit goes to the winner's colour, in one route
        change (no moment where the challenger's units fall back and return)."""
        route = self.routes[model]
        experiment = route.running_experiment
        if experiment is None:
            return route
        active = experiment.colour_of(winner)
        log.info(
            "%s: experiment %s ended (%s); traffic to %s", model, experiment.id, reason, active
        )
        return self.set_route(
            model, active=active, experiment=experiment.ended(reason, time.time())
        )

    async def watch_guardrails(self, on_breach) -> None:
        """Every GUARDRAIL_EVERY_S, end each running experiment whose challenger breaches a
        guardrail; `on_breach(experiment, reason)` records it (the audit log)."""
        while True:
            await asyncio.sleep(GUARDRAIL_EVERY_S)
            for model in MODELS:
                experiment = self.routes[model].running_experiment
                reason = experiment and self.guardrail_breach(experiment)
                if experiment is not None and reason:
                    self.end_experiment(model, f"guardrail: {reason}")
                    on_breach(experiment, reason)

    def _choose(self, model: str, route: Route) -> str | None:
        """The live colour, or the other one while the live one is known to be down."""
        if route.active is None or route.active not in route.slots:
            return None
        spare = other(route.active)
        down = not self.health.ready(model, route.active)
        if down and spare in route.slots and self.health.ready(model, spare):
            self.metrics.failed_over(model)
            return spare
        return route.active

    async def _answer(
        self, model: str, route: Route, colour: str, path: str, body: bytes, headers: dict
    ) -> tuple[int, bytes, str]:
        """Forward to `colour`; if it does not answer at all, once more to the other colour
        (scoring is idempotent), when that one is up. Returns the colour that answered."""
        status, payload, ms = await self.forward(route.slots[colour], path, body, headers)
        self.record(model, colour, "live", status, ms)
        spare = other(colour)
        if status == 0 and spare in route.slots and self.health.ready(model, spare):
            self.health.mark_down(model, colour)
            self.metrics.failed_over(model)
            status, payload, ms = await self.forward(route.slots[spare], path, body, headers)
            self.record(model, spare, "live", status, ms)
            colour = spare
        return status, payload, colour

    async def forward(
        self, base: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, float]:
        assert self.session is not None
        return await forward(self.session, base, path, body, headers)

    def record(self, model: str, colour: str, role: str, status: int, ms: float) -> None:
        self.stats.record(model, colour, role, status, ms)
        if role == "live":
            self.metrics.answered(model, colour, status, ms)
