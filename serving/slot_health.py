"""Whether each slot behind the gateway is ready, and which version it serves: every slot is
probed each second (GET /readyz, POST /model). A slot that answers "not ready", refuses the
connection or did not answer a forwarded request is down at once; a probe that merely timed out
(a loaded machine) is tolerated PROBE_TIMEOUTS_TO_DOWN times in a row before the slot counts as
down, as Kubernetes' failureThreshold does, so that a busy slot does not flap and send its
traffic (an experiment's arm) to the other colour. A slot never probed counts as ready."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout

from .routing import Route

HEALTH_EVERY_S = 1.0
PROBE_TIMEOUT_S = 2
PROBE_TIMEOUTS_TO_DOWN = 3


class SlotHealth:
    def __init__(self, probe_headers: dict[str, str]) -> None:
        self.probe_headers = probe_headers  # /model is keyed like the scoring routes
        self._by_slot: dict[tuple[str, str], dict[str, Any]] = {}

    def of(self, model: str, colour: str) -> dict[str, Any]:
        """The last probe's findings: ready, version, checked (empty before the first)."""
        return self._by_slot.get((model, colour), {})

    def ready(self, model: str, colour: str) -> bool:
        return self.of(model, colour).get("ready", True)

    def mark_down(self, model: str, colour: str) -> None:
        self._by_slot[(model, colour)] = {**self.of(model, colour), "ready": False}

    def forget(self, model: str, colour: str) -> None:
        self._by_slot.pop((model, colour), None)

    async def watch(self, session: ClientSession, routes: dict[str, Route]) -> None:
        """Probe every slot of `routes` (read afresh each round) until cancelled."""
        while True:
            for model, route in list(routes.items()):
                for colour, base in list(route.slots.items()):
                    found = await self._probe(session, base)
                    self._by_slot[(model, colour)] = self._judge(model, colour, found)
            await asyncio.sleep(HEALTH_EVERY_S)

    def _judge(self, model: str, colour: str, found: dict[str, Any]) -> dict[str, Any]:
        """A timed-out probe keeps the slot's last state until PROBE_TIMEOUTS_TO_DOWN in a row."""
        if not found.pop("timed_out", False):
            return found
        last = self.of(model, colour)
        timeouts = last.get("timeouts", 0) + 1
        ready = last.get("ready", True) and timeouts < PROBE_TIMEOUTS_TO_DOWN
        return {**last, "ready": ready, "timeouts": timeouts, "checked": found["checked"]}

    async def _probe(self, session: ClientSession, base: str) -> dict[str, Any]:
        timeout = ClientTimeout(PROBE_TIMEOUT_S)
        try:
            async with session.get(base + "/readyz", timeout=timeout) as r:
                ready = r.status == 200
            async with session.post(
                base + "/model", json={}, headers=self.probe_headers, timeout=timeout
            ) as r:
                info = await r.json() if r.status == 200 else {}
        except TimeoutError:
            return {"ready": False, "timed_out": True, "checked": time.time()}
        except (ClientError, OSError, ValueError):
            return {"ready": False, "checked": time.time()}
        return {"ready": ready, "version": info.get("version"), "checked": time.time()}
