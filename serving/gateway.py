"""The gateway: the shop's one URL. It sends /recommend* and /price* to the live colour of each
model, mirrors a share of them to a challenger while it is shadowed, fails over to the other
colour when the live one stops answering, and records every answer per colour for the
promotion's checks.

    python -m serving.gateway          (what `aisle serve up` starts)

This module puts the aiohttp application together; the parts are

    serving.routing          the routing table (a Route per model), saved to routes.json
    serving.proxy            Gateway: its state, and a scoring request answered with failover
    serving.forwarding       one request passed on to a slot
    serving.mirroring        shadow traffic and the pairs of answers it leaves
    serving.slot_health      each slot probed every second
    serving.gateway_metrics  the Prometheus metrics (/metrics)
    serving.admin_routes     /admin/..., behind the bearer token AISLE_ADMIN_TOKEN
    serving.events           POST /events: the shop's events onto the event stream
    serving.answer_log       a record of every answer, published on the event stream
    serving.experiments      online experiments: units split by arm, guardrails watched

An aiohttp server and client (keep-alive connection pools to every slot). /healthz and /metrics
are open.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from core.audit import AuditLog
from core.settings import Settings, get_settings

from .admin_routes import admin_guard, admin_routes
from .events import events_handler
from .proxy import Gateway
from .routing import SCORING_PATHS

log = logging.getLogger("aisle.gateway")


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or get_settings()
    gateway = Gateway(settings)
    app = web.Application(
        client_max_size=settings.max_request_bytes, middlewares=[admin_guard(settings)]
    )
    app["gateway"] = gateway
    audit = AuditLog(settings, who="gateway")

    def audit_breach(experiment, reason: str) -> None:
        audit.write(experiment.model, "experiment", "guardrail_breach", experiment=experiment.id,
                    version=experiment.treatment_version, reason=reason,
                    traffic_to=experiment.control)  # fmt: skip

    async def start(app: web.Application) -> None:
        gateway.session = ClientSession(
            connector=TCPConnector(limit=256, limit_per_host=128, keepalive_timeout=60),
            timeout=ClientTimeout(total=30, connect=2),
        )
        app["health"] = asyncio.create_task(gateway.health.watch(gateway.session, gateway.routes))
        app["stream"] = asyncio.create_task(gateway.stream.keep_connected())
        app["answers"] = asyncio.create_task(gateway.answers.drain(gateway.stream.ready))
        app["guardrails"] = asyncio.create_task(gateway.watch_guardrails(audit_breach))

    async def stop(app: web.Application) -> None:
        for task in ("health", "stream", "answers", "guardrails"):
            app[task].cancel()
        if not await gateway.answers.flush(gateway.stream.ready()):  # what is still queued
            log.warning("%d answer-log records not published", len(gateway.answers.queue))
        await gateway.stream.close()
        if gateway.session:
            await gateway.session.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    for path in SCORING_PATHS:
        app.router.add_post(path, gateway.score)
    app.router.add_post("/events", events_handler(settings, gateway.stream, gateway.metrics))
    app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))
    app.router.add_get("/metrics", lambda r: web.Response(
        body=gateway.metrics.exposition(), content_type="text/plain"))  # fmt: skip
    app.add_routes(admin_routes(gateway))
    return app


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
