"""The gateway: the shop's one URL. It sends /recommend* and /price* to the live colour of each
model, mirrors a share of them to a challenger while it is shadowed, fails over to the other
colour when the live one stops answering, and records every answer per colour for the
promotion's checks.

    python -m serving.gateway          (what `aisle serve up` starts)

An aiohttp server and client (keep-alive connection pools to every slot). The routing table is
one dict per model, replaced whole on a switch: a request reads it once, so a flip is atomic and
requests in flight finish where they started. It is saved to <data_dir>/serving/routes.json on
every change and read back at start.

Admin routes (`/admin/...`: status, slots, switch, shadow, stats, pairs, recent) need the bearer
token AISLE_ADMIN_TOKEN; without one configured they all answer 401. /healthz and /metrics are
open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from core.settings import Settings, get_settings

from .security import bearer, token_matches
from .stats import Stats

log = logging.getLogger("aisle.gateway")
ROUTES = {
    "/recommend": "recommender",
    "/recommend_batch": "recommender",
    "/price": "pricing",
    "/price_batch": "pricing",
}
MODELS = ("recommender", "pricing")
COLOURS = ("blue", "green")
FORWARDED_HEADERS = ("content-type", "x-api-key", "authorization", "x-request-id")
KEEP_PAIRS = 5_000
KEEP_RECENT = 2_000
HEALTH_EVERY_S = 1.0


def other(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


@dataclass(frozen=True)
class Route:
    """Where one model's traffic goes. Replaced whole, never edited in place."""

    active: str | None = None
    slots: dict[str, str] = field(default_factory=dict)  # colour -> base URL
    shadow: str | None = None
    shadow_share: float = 0.0


@dataclass
class Pair:
    """A mirrored request: what the live colour and the shadow answered."""

    at: float
    path: str
    request: Any
    live_status: int
    live: Any
    shadow_status: int
    shadow: Any
    shadow_ms: float


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state_file = settings.serving_dir / "routes.json"
        self.routes: dict[str, Route] = {m: Route() for m in MODELS}
        self.health: dict[tuple[str, str], dict[str, Any]] = {}
        self.stats = Stats()
        self.pairs: dict[str, deque[Pair]] = {m: deque(maxlen=KEEP_PAIRS) for m in MODELS}
        self.recent: dict[str, deque[tuple[str, Any]]] = {
            m: deque(maxlen=KEEP_RECENT) for m in MODELS
        }
        self.session: ClientSession | None = None
        keys = [k.get_secret_value() for k in settings.api_keys]
        self.probe_headers = {"X-API-Key": keys[0]} if keys else {}  # /model is keyed too
        self._mirrors: set[asyncio.Task] = set()
        self._load()
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "aisle_gateway_requests", "Answers by model, colour and status.",
            ["model", "colour", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "aisle_gateway_request_seconds", "Time to answer, through the gateway.",
            ["model", "colour"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )  # fmt: skip
        self.failovers = Counter(
            "aisle_gateway_failovers", "Requests answered by the other colour.", ["model"],
            registry=self.registry,
        )  # fmt: skip
        self.live = Gauge(
            "aisle_gateway_live", "1 for the colour that takes a model's traffic.",
            ["model", "colour"], registry=self.registry,
        )  # fmt: skip
        self._export_live()

    # -- state ---------------------------------------------------------------------------
    def _load(self) -> None:
        for model, slots in self.settings.gateway_slots.items():
            if model in self.routes and slots:
                urls = {c: u.rstrip("/") for c, u in slots.items() if c in COLOURS}
                self.routes[model] = Route(active=next(iter(urls)), slots=urls)
        if not self.state_file.exists():
            return
        saved = json.loads(self.state_file.read_text())
        for model, route in saved.items():
            if model in self.routes:
                self.routes[model] = Route(
                    active=route.get("active"), slots=dict(route.get("slots", {}))
                )

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_suffix(".partial")
        state = {m: {"active": r.active, "slots": r.slots} for m, r in self.routes.items()}
        partial.write_text(json.dumps(state, indent=2))
        partial.replace(self.state_file)

    def _export_live(self) -> None:
        for model, route in self.routes.items():
            for colour in COLOURS:
                self.live.labels(model, colour).set(1 if route.active == colour else 0)

    def set_route(self, model: str, **changes: Any) -> Route:
        self.routes[model] = replace(self.routes[model], **changes)
        self._save()
        self._export_live()
        return self.routes[model]

    # -- scoring -------------------------------------------------------------------------
    async def score(self, request: web.Request) -> web.Response:
        path = request.path
        model = ROUTES[path]
        route = self.routes[model]  # read once: a switch mid-request does not move it
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
        colour = self._choose(model, route)
        if colour is None:
            return _error(503, f"no {model} slot is live; run `aisle serve up`")
        status, payload, colour = await self._answer(model, route, colour, path, body, headers)
        if status and status < 400:
            self.recent[model].append((path, body))
        if route.shadow and route.shadow in route.slots and random.random() < route.shadow_share:
            task = asyncio.create_task(
                self._mirror(model, route, path, body, headers, status, payload)
            )
            self._mirrors.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._mirrors.discard)
        if status == 0:
            return _error(503, f"no {model} slot answered; retry shortly")
        return web.Response(body=payload, status=status, content_type="application/json")

    def _choose(self, model: str, route: Route) -> str | None:
        """The live colour, or the other one while the live one is known to be down."""
        if route.active is None or route.active not in route.slots:
            return None
        spare = other(route.active)
        down = not self._healthy(model, route.active)
        if down and spare in route.slots and self._healthy(model, spare):
            self.failovers.labels(model).inc()
            return spare
        return route.active

    def _healthy(self, model: str, colour: str) -> bool:
        return self.health.get((model, colour), {}).get("ready", True)

    async def _answer(self, model, route, colour, path, body, headers):
        """Forward to `colour`; if it does not answer at all, once more to the other colour
        (scoring is idempotent), when that one is up."""
        status, payload, ms = await self._forward(route.slots[colour], path, body, headers)
        self._record(model, colour, "live", status, ms)
        spare = other(colour)
        if status == 0 and spare in route.slots and self._healthy(model, spare):
            self.health[(model, colour)] = {**self.health.get((model, colour), {}), "ready": False}
            self.failovers.labels(model).inc()
            status, payload, ms = await self._forward(route.slots[spare], path, body, headers)
            self._record(model, spare, "live", status, ms)
            colour = spare
        return status, payload, colour

    async def _forward(self, base: str, path: str, body: bytes, headers: dict[str, str]):
        started = time.perf_counter()
        assert self.session is not None
        try:
            async with self.session.post(base + path, data=body, headers=headers) as response:
                payload = await response.read()
                status = response.status
        except (TimeoutError, ClientError, OSError) as exc:
            log.warning("%s%s did not answer: %s", base, path, exc)
            status, payload = 0, b""
        return status, payload, (time.perf_counter() - started) * 1000

    def _record(self, model: str, colour: str, role: str, status: int, ms: float) -> None:
        self.stats.record(model, colour, role, status, ms)
        if role == "live":
            self.requests.labels(model, colour, str(status)).inc()
            self.latency.labels(model, colour).observe(ms / 1000)

    async def _mirror(self, model, route, path, body, headers, live_status, live_payload):
        colour = route.shadow
        status, payload, ms = await self._forward(route.slots[colour], path, body, headers)
        self._record(model, colour, "shadow", status, ms)
        self.pairs[model].append(
            Pair(
                time.time(),
                path,
                _json(body),
                live_status,
                _json(live_payload),
                status,
                _json(payload),
                ms,
            )
        )

    # -- health --------------------------------------------------------------------------
    async def watch_health(self) -> None:
        while True:
            for model, route in list(self.routes.items()):
                for colour, base in list(route.slots.items()):
                    self.health[(model, colour)] = await self._probe(base)
            await asyncio.sleep(HEALTH_EVERY_S)

    async def _probe(self, base: str) -> dict[str, Any]:
        assert self.session is not None
        try:
            async with self.session.get(base + "/readyz", timeout=ClientTimeout(2)) as r:
                ready = r.status == 200
            async with self.session.post(
                base + "/model", json={}, headers=self.probe_headers, timeout=ClientTimeout(2)
            ) as r:
                info = await r.json() if r.status == 200 else {}
        except (TimeoutError, ClientError, OSError, ValueError):
            return {"ready": False, "checked": time.time()}
        return {"ready": ready, "version": info.get("version"), "checked": time.time()}

    # -- admin ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        since = time.time() - 10
        out = {}
        for model, route in self.routes.items():
            colours = {}
            for colour in COLOURS:
                health = self.health.get((model, colour), {})
                colours[colour] = {
                    "url": route.slots.get(colour),
                    "live": route.active == colour,
                    "shadow": route.shadow == colour,
                    "ready": health.get("ready") if colour in route.slots else None,
                    "version": health.get("version"),
                    "last_10s": self.stats.window(model, colour, "live", since).to_dict(),
                }
            out[model] = {"active": route.active, "shadow_share": route.shadow_share,
                          "colours": colours}  # fmt: skip
        return out


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload) if payload else None
    except ValueError:
        return payload[:200].decode("utf-8", "replace")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


# -- the aiohttp application -----------------------------------------------------------------
def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or get_settings()
    gateway = Gateway(settings)
    app = web.Application(
        client_max_size=settings.max_request_bytes, middlewares=[_admin_guard(settings)]
    )
    app["gateway"] = gateway

    async def start(app: web.Application) -> None:
        gateway.session = ClientSession(
            connector=TCPConnector(limit=256, limit_per_host=128, keepalive_timeout=60),
            timeout=ClientTimeout(total=30, connect=2),
        )
        app["health"] = asyncio.create_task(gateway.watch_health())

    async def stop(app: web.Application) -> None:
        app["health"].cancel()
        if gateway.session:
            await gateway.session.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    for path in ROUTES:
        app.router.add_post(path, gateway.score)
    app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))
    app.router.add_get("/metrics", lambda r: web.Response(
        body=generate_latest(gateway.registry), content_type="text/plain"))  # fmt: skip
    app.add_routes(_admin_routes(gateway))
    return app


def _admin_guard(settings: Settings):
    token = settings.admin_token.get_secret_value() if settings.admin_token else None

    @web.middleware
    async def guard(request: web.Request, handler):
        if request.path.startswith("/admin"):
            if token is None:
                return _error(401, "admin actions are disabled: set AISLE_ADMIN_TOKEN")
            headers = {k.lower(): v for k, v in request.headers.items()}
            if not token_matches(bearer(headers), [token]):
                return _error(401, "admin actions need 'Authorization: Bearer <token>'")
        return await handler(request)

    return guard


def _admin_routes(gateway: Gateway) -> list[web.RouteDef]:
    routes = web.RouteTableDef()

    async def body_of(request: web.Request, *names: str) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="a JSON body is required") from None
        missing = [n for n in names if n not in body]
        if missing:
            raise web.HTTPBadRequest(text=f"missing {', '.join(missing)}")
        if body.get("model") not in MODELS:
            raise web.HTTPBadRequest(text=f"model must be one of {', '.join(MODELS)}")
        if "colour" in names and body["colour"] not in COLOURS:
            raise web.HTTPBadRequest(text=f"colour must be one of {', '.join(COLOURS)}")
        return body

    @routes.get("/admin/status")
    async def status(request: web.Request) -> web.Response:
        return web.json_response(gateway.status())

    @routes.post("/admin/slots")
    async def slots(request: web.Request) -> web.Response:
        body = await body_of(request, "model", "colour")
        route = gateway.routes[body["model"]]
        urls = dict(route.slots)
        if body.get("url"):
            urls[body["colour"]] = body["url"].rstrip("/")
        elif route.active == body["colour"]:
            raise web.HTTPConflict(text="the live colour cannot be removed; switch first")
        else:
            urls.pop(body["colour"], None)
        gateway.health.pop((body["model"], body["colour"]), None)
        route = gateway.set_route(body["model"], slots=urls)
        return web.json_response(asdict(route))

    @routes.post("/admin/switch")
    async def switch(request: web.Request) -> web.Response:
        body = await body_of(request, "model", "colour")
        model, colour = body["model"], body["colour"]
        before = gateway.routes[model]
        if colour not in before.slots:
            raise web.HTTPConflict(text=f"{model} has no {colour} slot")
        shadow = None if before.shadow == colour else before.shadow
        route = gateway.set_route(model, active=colour, shadow=shadow,
                                  shadow_share=before.shadow_share if shadow else 0.0)  # fmt: skip
        log.info("%s: live colour %s -> %s", model, before.active, colour)
        return web.json_response({"before": before.active, "after": route.active,
                                  "at": time.time()})  # fmt: skip

    @routes.post("/admin/shadow")
    async def shadow(request: web.Request) -> web.Response:
        body = await body_of(request, "model")
        colour, share = body.get("colour"), float(body.get("share", 0.0))
        if colour is not None and colour not in gateway.routes[body["model"]].slots:
            raise web.HTTPConflict(text=f"{body['model']} has no {colour} slot")
        route = gateway.set_route(body["model"], shadow=colour,
                                  shadow_share=share if colour else 0.0)  # fmt: skip
        return web.json_response(asdict(route))

    @routes.get("/admin/stats")
    async def stats(request: web.Request) -> web.Response:
        q = request.query
        window = gateway.stats.window(
            q["model"], q["colour"], q.get("role", "live"), float(q.get("since", 0))
        )
        return web.json_response(window.to_dict())

    @routes.get("/admin/pairs")
    async def pairs(request: web.Request) -> web.Response:
        since = float(request.query.get("since", 0))
        found = [asdict(p) for p in gateway.pairs[request.query["model"]] if p.at >= since]
        return web.json_response(found)

    @routes.get("/admin/recent")
    async def recent(request: web.Request) -> web.Response:
        n = int(request.query.get("n", 100))
        found = list(gateway.recent[request.query["model"]])[-n:]
        return web.json_response([{"path": p, "body": _json(b)} for p, b in found])

    return list(routes)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio works too
        pass
    web.run_app(
        create_app(settings),
        host=settings.serving_host,
        port=settings.gateway_port,
        access_log=None,
        print=lambda *_: None,
    )


if __name__ == "__main__":
    main()
