"""The gateway's core: what it knows (the routing table, each slot's health, per-colour stats,
recent requests, mirrored pairs, metrics) and how it answers a scoring request.

A request goes to its model's live colour, or to the other colour while the live one is known to
be down; when the chosen slot does not answer at all it is marked down and the request is sent
once more to the other colour (scoring is idempotent). Every answer is recorded per colour for the
promotion's checks, and a share of requests is mirrored to a shadow colour (serving.mirroring).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import replace
from typing import Any

from aiohttp import ClientSession, web

from core.settings import Settings

from .answer_log import AnswerLog, new_request_id
from .events import StreamLink
from .forwarding import forward, forwarded_headers
from .gateway_metrics import GatewayMetrics
from .mirroring import Mirroring
from .routing import MODELS, SCORING_PATHS, Route, load_routes, other, save_routes
from .slot_health import SlotHealth
from .stats import Stats

KEEP_RECENT = 2_000  # recent answered requests per model: the promotion's smoke and replays


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
        colour = self._choose(model, route)
        if colour is None:
            return error_response(503, f"no {model} slot is live; run `aisle serve up`")
        status, payload, colour = await self._answer(model, route, colour, path, body, headers)
        if status and status < 400:
            self.recent[model].append((path, body))
            # scheduled, not awaited: parsing the answer for the log does not hold this one up
            asyncio.get_running_loop().call_soon(
                self.answers.log, path, model, colour, request_id, body, payload, status
            )
        self.mirroring.maybe_mirror(model, route, path, body, headers, status, payload)
        if status == 0:
            return error_response(503, f"no {model} slot answered; retry shortly")
        return web.Response(
            body=payload,
            status=status,
            content_type="application/json",
            headers={REQUEST_ID: request_id},
        )

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
