"""The gateway's admin API, the server side of serving.admin (which the CLI and the promotion
call). Every /admin route needs the bearer token AISLE_ADMIN_TOKEN; without one configured they
all answer 401.

    GET  /admin/status    each model's route, and per colour its URL, health, version, last 10 s
    POST /admin/slots     {model, colour, url}: add or replace a colour's slot (url null: remove)
    POST /admin/switch    {model, colour}: that colour takes the model's traffic, at once
    POST /admin/shadow    {model, colour, share}: mirror that share of requests to it (null: stop)
    GET  /admin/stats     ?model&colour[&role=live|shadow][&since]: a window of answers (stats)
    GET  /admin/pairs     ?model[&since]: the mirrored pairs of answers
    GET  /admin/recent    ?model[&n=100]: the last answered requests
    GET  /admin/experiments       each model's latest experiment (running or ended), or null
    POST /admin/experiments       {model, id, treatment, share, metric, ...}: start one; both
                                  colours then take traffic, split by unit (serving.experiments)
    POST /admin/experiments/end   {model, reason, winner: control|treatment}: end it; all traffic
                                  to the winner's colour, in one route change

A missing or unknown model, colour or role, or a number that is not one, is a 400 that says what
is allowed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from core.settings import Settings

from .experiments import ARMS, Experiment
from .forwarding import as_json
from .proxy import Gateway, error_response
from .routing import COLOURS, MODELS
from .security import bearer, token_matches

log = logging.getLogger("aisle.gateway")
ROLES = ("live", "shadow")  # what the stats record: answers to callers, and mirrored ones


def admin_guard(settings: Settings):
    """Middleware: /admin/... needs `Authorization: Bearer <AISLE_ADMIN_TOKEN>`, else 401."""
    token = settings.admin_token.get_secret_value() if settings.admin_token else None

    @web.middleware
    async def guard(request: web.Request, handler):
        if request.path.startswith("/admin"):
            if token is None:
                return error_response(401, "admin actions are disabled: set AISLE_ADMIN_TOKEN")
            headers = {k.lower(): v for k, v in request.headers.items()}
            if not token_matches(bearer(headers), [token]):
                return error_response(401, "admin actions need 'Authorization: Bearer <token>'")
        return await handler(request)

    return guard


def route_status(gateway: Gateway) -> dict[str, Any]:
    """Per model: the live colour, the shadow share, and each colour's slot as last seen."""
    since = time.time() - 10
    out = {}
    for model, route in gateway.routes.items():
        colours = {}
        for colour in COLOURS:
            health = gateway.health.of(model, colour)
            colours[colour] = {
                "url": route.slots.get(colour),
                "live": route.active == colour,
                "shadow": route.shadow == colour,
                "ready": health.get("ready") if colour in route.slots else None,
                "version": health.get("version"),
                "last_10s": gateway.stats.window(model, colour, "live", since).to_dict(),
            }
        out[model] = {"active": route.active, "shadow_share": route.shadow_share,
                      "colours": colours}  # fmt: skip
    return out


def one_of(name: str, value: Any, allowed: Iterable[str]) -> str:
    """`value` when it is one of `allowed`; a 400 that names them else."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise web.HTTPBadRequest(text=f"{name} must be one of {', '.join(allowed)}")
    return value


def number(request: web.Request, name: str, default: float, kind: type = float) -> Any:
    """The query parameter `name` as a `kind` (float or int), `default` when absent."""
    try:
        return kind(request.query.get(name, default))
    except ValueError:
        wanted = "a whole number" if kind is int else "a number"
        raise web.HTTPBadRequest(text=f"{name} must be {wanted}") from None


async def json_body(request: web.Request, *names: str) -> dict[str, Any]:
    """The JSON body, with `names` present and a known model (and colour, when named)."""
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="a JSON body is required") from None
    missing = [n for n in names if n not in body]
    if missing:
        raise web.HTTPBadRequest(text=f"missing {', '.join(missing)}")
    one_of("model", body.get("model"), MODELS)
    if "colour" in names:
        one_of("colour", body["colour"], COLOURS)
    return body


def admin_routes(gateway: Gateway) -> list[web.RouteDef]:
    routes = web.RouteTableDef()

    @routes.get("/admin/status")
    async def status(request: web.Request) -> web.Response:
        return web.json_response(route_status(gateway))

    @routes.post("/admin/slots")
    async def slots(request: web.Request) -> web.Response:
        body = await json_body(request, "model", "colour")
        route = gateway.routes[body["model"]]
        urls = dict(route.slots)
        if body.get("url"):
            urls[body["colour"]] = body["url"].rstrip("/")
        elif route.active == body["colour"]:
            raise web.HTTPConflict(text="the live colour cannot be removed; switch first")
        else:
            urls.pop(body["colour"], None)
        gateway.health.forget(body["model"], body["colour"])
        route = gateway.set_route(body["model"], slots=urls)
        return web.json_response(asdict(route))

    @routes.post("/admin/switch")
    async def switch(request: web.Request) -> web.Response:
        body = await json_body(request, "model", "colour")
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
        body = await json_body(request, "model")
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
            one_of("model", q.get("model"), MODELS),
            one_of("colour", q.get("colour"), COLOURS),
            one_of("role", q.get("role", "live"), ROLES),
            number(request, "since", 0),
        )
        return web.json_response(window.to_dict())

    @routes.get("/admin/pairs")
    async def pairs(request: web.Request) -> web.Response:
        model = one_of("model", request.query.get("model"), MODELS)
        since = number(request, "since", 0)
        found = [asdict(p) for p in gateway.mirroring.pairs[model] if p.at >= since]
        return web.json_response(found)

    @routes.get("/admin/recent")
    async def recent(request: web.Request) -> web.Response:
        model = one_of("model", request.query.get("model"), MODELS)
        n = number(request, "n", 100, int)
        if n < 1:
            raise web.HTTPBadRequest(text=f"n must be a whole number >= 1, not {n}")
        found = list(gateway.recent[model])[-n:]
        return web.json_response([{"path": p, "body": as_json(b)} for p, b in found])

    @routes.get("/admin/experiments")
    async def experiments(request: web.Request) -> web.Response:
        found = {}
        for model, route in gateway.routes.items():
            experiment = route.experiment
            found[model] = None if experiment is None else {
                **experiment.to_dict(),
                "quote_violations": gateway.quote_violations[experiment.id],
            }  # fmt: skip
        return web.json_response(found)

    @routes.post("/admin/experiments")
    async def start_experiment(request: web.Request) -> web.Response:
        body = await json_body(request, "model", "id", "treatment", "share", "metric")
        model, route = body["model"], gateway.routes[body["model"]]
        treatment = one_of("treatment", body["treatment"], COLOURS)
        if route.running_experiment is not None:
            raise web.HTTPConflict(text=f"{model} already runs experiment "
                                        f"{route.running_experiment.id}; end it first")  # fmt: skip
        if route.active is None or treatment == route.active:
            raise web.HTTPConflict(text=f"the treatment colour must be the idle one, not "
                                        f"{route.active}")  # fmt: skip
        if treatment not in route.slots:
            raise web.HTTPConflict(text=f"{model} has no {treatment} slot")
        share = float(body["share"])
        if not 0 < share < 1:
            raise web.HTTPBadRequest(text=f"share must be between 0 and 1, not {share}")
        experiment = Experiment.from_dict(
            {**body, "control": route.active, "started_at": time.time(), "status": "running"}
        )
        gateway.set_route(model, experiment=experiment, shadow=None, shadow_share=0.0)
        log.info("%s: experiment %s started, %s of units to %s", model, experiment.id, share,
                 treatment)  # fmt: skip
        return web.json_response(experiment.to_dict())

    @routes.post("/admin/experiments/end")
    async def end_experiment(request: web.Request) -> web.Response:
        body = await json_body(request, "model", "reason")
        winner = one_of("winner", body.get("winner", "control"), ARMS)
        model = body["model"]
        if gateway.routes[model].running_experiment is None:
            raise web.HTTPConflict(text=f"{model} has no running experiment")
        route = gateway.end_experiment(model, str(body["reason"]), winner)
        return web.json_response({"active": route.active, **route.experiment.to_dict()})

    return list(routes)
