"""The answer log, as the gateway writes it: one record per answer a model gave (a batch call
leaves one per element), published on the event stream (`aisle.answers`) for the consumer to
write into answers/date=<day>/ (features.stream.zones).

    request_id   the X-Request-Id the caller sent, else one the gateway made; it comes back in
                 the answer's X-Request-Id header, for the shop to send with the events that
                 follow (`request_id`). A batch's elements are <id>:<position>.
    at, path, model, version, colour, status
    experiment, arm  the running experiment's id and the unit's assigned arm (control |
                 treatment; serving.experiments), else empty
    user_id | item_id, store_id     who or what was asked about
    context      the rest of the request (k, current_item, category; cost, current_price...),
                 and a quote's cost when the request gave none (the profit it earns)
    item_ids, scores                a recommendation, in the order shown (position = index + 1)
    price        a quote
    fallback     the answer was not personal / quoted on stale features

AISLE_EVENTS__ANSWER_SAMPLE keeps that share of requests, chosen by a hash of the request id (a
batch is kept or left whole). Publishing never delays an answer: records wait in a bounded queue
that a background task drains every 100 ms; while the broker is down they wait there, and what
overflows the queue is counted (aisle_answer_log_dropped), never silently lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from core.events import ANSWERS_SUBJECT
from core.settings import Settings

log = logging.getLogger("aisle.gateway")
MAX_QUEUED = 20_000  # ~20 s of a busy shop's answers while the broker is away
PUBLISH_EVERY_S = 0.1
PER_MESSAGE = 500
REQUEST_KEYS = {"user_id", "item_id", "store_id"}


def new_request_id() -> str:
    return uuid.uuid4().hex


def kept(request_id: str, share: float) -> bool:
    if share >= 1:
        return True
    digest = hashlib.sha256(request_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def answer_records(
    path: str,
    model: str,
    colour: str,
    request_id: str,
    body: Any,
    answer: Any,
    status: int,
    arm: str | None = None,
    experiment: str | None = None,
    positions: list[int] | None = None,
) -> list[dict[str, Any]]:
    """The log's records for one answered call (empty when either side is not what the
    services' schemas promise: nothing is made up). `positions`: where a split batch's elements
    stood in the batch asked (their ids are <request id>:<position>)."""
    at = datetime.now(UTC).isoformat()
    base = {"at": at, "path": path, "model": model, "colour": colour, "status": status,
            "arm": arm, "experiment": experiment}  # fmt: skip
    where = positions if positions is not None else range(1_000_000)
    pairs: list[tuple[str, dict, dict, str | None]] = []
    if path in ("/recommend", "/price") and isinstance(body, dict) and isinstance(answer, dict):
        pairs.append((request_id, body, answer, answer.get("model_version")))
    elif path == "/recommend_batch" and isinstance(body, dict) and isinstance(answer, list):
        for i, asked, one in zip(where, body.get("requests") or [], answer, strict=False):
            pairs.append((f"{request_id}:{i}", asked, one, one.get("model_version")))
    elif path == "/price_batch" and isinstance(body, dict) and isinstance(answer, dict):
        version = answer.get("model_version")
        for i, asked, one in zip(
            where, body.get("requests") or [], answer.get("results") or [], strict=False
        ):
            if isinstance(one, dict) and "price" in one:
                pairs.append((f"{request_id}:{i}", asked, one, version))
    records = []
    for rid, asked, one, version in pairs:
        if not isinstance(asked, dict) or not isinstance(one, dict):
            continue
        record = {**base, "request_id": rid, "version": version}
        record.update({k: str(asked[k]) for k in REQUEST_KEYS if asked.get(k) is not None})
        record["context"] = {k: v for k, v in asked.items() if k not in REQUEST_KEYS}
        if "items" in one:
            items = [i for i in one["items"] if isinstance(i, dict)]
            record["item_ids"] = [str(i.get("item_id")) for i in items]
            record["scores"] = [float(i.get("score", 0.0)) for i in items]
        if "price" in one:
            record["price"] = one["price"]
            if one.get("cost") is not None:  # the cost the quote was made at: its profit
                record["context"].setdefault("cost", one["cost"])
        record["fallback"] = bool(one.get("fallback", False))
        records.append(record)
    return records


class AnswerLog:
    """Records queued by the gateway, published in batches by `drain`."""

    def __init__(self, settings: Settings, dropped_counter: Any = None) -> None:
        self.share = settings.events.answer_sample
        self.queue: deque[dict[str, Any]] = deque()
        self.dropped = dropped_counter

    def add(self, records: list[dict[str, Any]]) -> None:
        room = MAX_QUEUED - len(self.queue)
        if len(records) > room:
            if self.dropped is not None:
                self.dropped.inc(len(records) - max(room, 0))
            records = records[: max(room, 0)]
        self.queue.extend(records)

    def log(
        self,
        path,
        model,
        colour,
        request_id,
        body: bytes,
        payload: bytes,
        status,
        arm=None,
        experiment=None,
        positions=None,
    ) -> None:
        if status >= 400 or not kept(request_id, self.share):
            return
        try:
            asked, answer = json.loads(body), json.loads(payload)
        except ValueError:
            return
        records = answer_records(
            path, model, colour, request_id, asked, answer, status, arm, experiment, positions
        )
        self.add(records)

    async def drain(self, bus_ready) -> None:
        """Publish what is queued every PUBLISH_EVERY_S, until cancelled. `bus_ready()` gives
        the connected EventBus, or None while there is none (records wait)."""
        while True:
            await self.flush(bus_ready())
            await asyncio.sleep(PUBLISH_EVERY_S)

    async def flush(self, bus) -> bool:
        """Publish the queue, PER_MESSAGE records a message; False when the broker did not take
        it all (the rest waits). The gateway also calls this when it stops."""
        from features.stream.bus import BrokerUnavailable

        while bus is not None and self.queue:
            chunk = [self.queue.popleft() for _ in range(min(PER_MESSAGE, len(self.queue)))]
            try:
                await bus.publish(ANSWERS_SUBJECT, json.dumps(chunk).encode())
            except BrokerUnavailable as exc:
                self.queue.extendleft(reversed(chunk))
                log.warning("answer log waits for the broker: %s", exc)
                return False
        return not self.queue
