"""POST /events on the gateway: the shop's interaction events onto the event stream.

    POST /events   one event, an array of them, or {"events": [...]} (1..1000), in the
                   canonical interactions schema plus `event_id` (and `request_id`, the answer
                   the shopper was shown); core.events.Event is the contract.

    202 {"accepted": n, "rejected": [{"index": i, "error": "price: ..."}]}
        once the broker holds the accepted events (its ack); the bad ones of a batch are named
        by index, the good ones go on
    400 a single bad event, or a batch with no good one: the error names the field
    401 without an API key (as for scoring), 413 over the body limit
    503 + Retry-After when the broker does not take them: nothing was accepted, send them again
        (the same event_id is counted once)

It never waits on the online store: the consumer (features.stream) writes that, behind the
broker. The gateway's broker connection is made in the background and kept (`StreamLink`).
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from core.events import EVENTS_SUBJECT, MAX_EVENTS_PER_POST, parse_events
from core.settings import Settings
from features.stream.bus import BrokerUnavailable, EventBus

from .security import API_KEY_HEADER, bearer, token_matches

log = logging.getLogger("aisle.gateway")
RETRY_AFTER_S = "1"


class StreamLink:
    """The gateway's connection to the broker, made (and remade) in the background."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bus: EventBus | None = None

    def ready(self) -> EventBus | None:
        return self.bus

    async def keep_connected(self) -> None:
        """Connect, retrying every second at first and every 30 s after a minute (a gateway
        without a stack, `aisle serve up` alone, has no broker: /events answers 503 meanwhile).
        Once connected, the broker's client reconnects by itself."""
        attempts = 0
        while self.bus is None:
            bus = EventBus(self.settings)
            try:
                await bus.connect()
                self.bus = bus
                log.info("event stream: %s broker at %s", bus.kind, bus.url)
            except BrokerUnavailable as exc:
                if attempts in (0, 60) or attempts % 120 == 0:
                    log.warning("event stream unavailable (%s); retrying", exc)
                attempts += 1
                await asyncio.sleep(1 if attempts < 60 else 30)

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.close()


def events_handler(settings: Settings, link: StreamLink, metrics):
    keys = [k.get_secret_value() for k in settings.api_keys]

    async def post_events(request: web.Request) -> web.Response:
        if keys:
            headers = {k.lower(): v for k, v in request.headers.items()}
            if not token_matches(headers.get(API_KEY_HEADER) or bearer(headers), keys):
                return _error(401, "missing or unknown API key: send it in the X-API-Key header")
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return _error(400, "the body is not JSON: send an event or an array of events")
        single = isinstance(payload, dict) and "events" not in payload
        items = (
            [payload] if single else payload.get("events") if isinstance(payload, dict) else payload
        )
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_EVENTS_PER_POST:
            return _error(400, f"send one event or an array of 1 to {MAX_EVENTS_PER_POST}")
        good, bad = parse_events(items)
        metrics.events("rejected", len(bad))
        if not good:
            if single:
                return _error(400, bad[0]["error"])
            return web.json_response({"error": "no valid event", "rejected": bad}, status=400)
        bus = link.ready()
        if bus is None:
            return _unavailable("the event stream is not connected yet")
        try:
            await bus.publish(EVENTS_SUBJECT, json.dumps([e.record() for e in good]).encode())
        except BrokerUnavailable as exc:
            log.warning("%s", exc)
            return _unavailable("the broker did not take the events")
        metrics.events("accepted", len(good))
        return web.json_response({"accepted": len(good), "rejected": bad}, status=202)

    return post_events


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _unavailable(why: str) -> web.Response:
    return web.json_response(
        {"error": f"{why}; nothing was accepted: send them again (event_id makes it safe)"},
        status=503,
        headers={"Retry-After": RETRY_AFTER_S},
    )
