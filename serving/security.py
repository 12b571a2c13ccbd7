"""ASGI middleware in front of the scoring services (open-source BentoML has no auth of its own):
API keys on the scoring routes and a cap on request bodies. Health, readiness and metrics stay
open, for probes and Prometheus."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/schema.json"})
API_KEY_HEADER = "x-api-key"


def token_matches(given: str | None, expected: Iterable[str]) -> bool:
    """Constant-time comparison against each accepted secret."""
    if not given:
        return False
    return any(hmac.compare_digest(given.encode(), e.encode()) for e in expected)


def bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value.lower().startswith("bearer ") else None


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class ApiKeyMiddleware:
    """Scoring routes need one of `keys` in X-API-Key (or `Authorization: Bearer`); 401 else."""

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = list(keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        if token_matches(headers.get(API_KEY_HEADER) or bearer(headers), self.keys):
            return await self.app(scope, receive, send)
        await send_json(
            send, 401, {"error": "missing or unknown API key: send it in the X-API-Key header"}
        )


class BodyLimitMiddleware:
    """Bodies over `max_bytes` get 413 before anything parses them, whether announced by
    Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _headers(scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self._refuse(send)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        await send_json(
            send, 413, {"error": f"request body over {self.max_bytes} bytes; split the batch"}
        )
