"""Fault injection for a slot, in the manner of a chaos proxy: added latency and failed requests
on the scoring routes (probes and /model answer as usual), read from a JSON file
(`{"latency_ms": 300, "error_rate": 0.5}`) that can change while the slot serves. Off unless
AISLE_SERVING_CHAOS_FILE names a file; the load tests use it to make a challenger turn slow or
fail only after it went live."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

from .security import OPEN_PATHS, ASGIApp, Receive, Scope, Send, send_json

CHAOS_ENV = "AISLE_SERVING_CHAOS_FILE"
RELOAD_S = 0.2


class ChaosMiddleware:
    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = Path(path)
        self._checked = 0.0
        self._faults: dict[str, Any] = {}

    def faults(self) -> dict[str, Any]:
        now = time.monotonic()
        if now - self._checked > RELOAD_S:
            self._checked = now
            try:
                self._faults = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self._faults = {}
        return self._faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["path"] == "/model":
            return await self.app(scope, receive, send)
        faults = self.faults()
        if faults.get("latency_ms"):
            await asyncio.sleep(float(faults["latency_ms"]) / 1000)
        if random.random() < float(faults.get("error_rate", 0)):
            return await send_json(send, 500, {"error": "injected fault (chaos file)"})
        await self.app(scope, receive, send)
