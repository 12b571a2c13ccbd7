"""Shadow traffic: while a model has a shadow colour, a share of its requests (the route's
`shadow_share`) is sent there too, in the background, after the live colour answered. The pairs
of answers are kept (the last KEEP_PAIRS per model) for the promotion's shadow check; the shadow's
answer never reaches the caller."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .forwarding import as_json
from .routing import MODELS, Route

KEEP_PAIRS = 5_000

Forward = Callable[[str, str, bytes, dict[str, str]], Awaitable[tuple[int, bytes, float]]]
Record = Callable[[str, str, str, int, float], None]  # model, colour, role, status, ms


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


class Mirroring:
    def __init__(self, forward: Forward, record: Record) -> None:
        self.pairs: dict[str, deque[Pair]] = {m: deque(maxlen=KEEP_PAIRS) for m in MODELS}
        self._forward = forward
        self._record = record
        self._tasks: set[asyncio.Task] = set()

    def maybe_mirror(
        self,
        model: str,
        route: Route,
        path: str,
        body: bytes,
        headers: dict[str, str],
        live_status: int,
        live_payload: bytes,
    ) -> None:
        """Mirror this request to the route's shadow colour, for its share of requests."""
        if not (route.shadow and route.shadow in route.slots):
            return
        if random.random() >= route.shadow_share:
            return
        task = asyncio.create_task(
            self._mirror(model, route, path, body, headers, live_status, live_payload)
        )
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)

    async def _mirror(self, model, route, path, body, headers, live_status, live_payload) -> None:
        colour = route.shadow
        status, payload, ms = await self._forward(route.slots[colour], path, body, headers)
        self._record(model, colour, "shadow", status, ms)
        self.pairs[model].append(
            Pair(
                at=time.time(),
                path=path,
                request=as_json(body),
                live_status=live_status,
                live=as_json(live_payload),
                shadow_status=status,
                shadow=as_json(payload),
                shadow_ms=ms,
            )
        )
