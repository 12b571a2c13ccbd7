"""One scoring request passed on to a slot, as the gateway and its mirror send it: the headers
that travel with it, the slot's answer with its time, and that answer read as JSON."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from aiohttp import ClientError, ClientSession, web

log = logging.getLogger("aisle.gateway")
FORWARDED_HEADERS = ("content-type", "x-api-key", "authorization", "x-request-id")


def forwarded_headers(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}


async def forward(
    session: ClientSession, base: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes, float]:
    """(status, payload, milliseconds); status 0 and no payload when the slot did not answer."""
    started = time.perf_counter()
    try:
        async with session.post(base + path, data=body, headers=headers) as response:
            payload = await response.read()
            status = response.status
    except (TimeoutError, ClientError, OSError) as exc:
        log.warning("%s%s did not answer: %s", base, path, exc)
        status, payload = 0, b""
    return status, payload, (time.perf_counter() - started) * 1000


def as_json(payload: bytes) -> Any:
    """The payload parsed, None when empty, its first 200 characters when it is not JSON."""
    try:
        return json.loads(payload) if payload else None
    except ValueError:
        return payload[:200].decode("utf-8", "replace")
