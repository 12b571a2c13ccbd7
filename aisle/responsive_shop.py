"""A simulated shop whose shoppers respond to what the gateway answers, as the simulator's hidden
world would (`features.sources.simulator.ResponseModel`), with the truth of every answer kept.

`ShopTraffic` (aisle/shop.py) keeps the loop's gateway busy; this shop closes the loop for an
experiment. Visitors drawn by activity ask POST /recommend and view, cart and buy what they are
shown by the world's click model; the events go to POST /events with the answer's request id.
Shelves (a fixed seeded sample of on-sale item x store pairs) ask POST /price once a simulated day
and sell Poisson units at the quote, which the store's till posts as one purchase. Every answer's
expected outcome (recommendation_expectations, price_expectations) is recorded under its request
id and model version, so an experiment's true effect follows from what the gateway really said.

Time is counted in requests: at `per_second` a day of `day_seconds` is per_second * day_seconds
requests, the shelves' price requests spread evenly over it and visitors in between, so a seed
gives the same schedule, visitors and draws (given the same answers) however fast the gateway is.
It generates fake shoppers, so it talks only to a gateway on this machine.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd

from core.events import MAX_EVENTS_PER_POST
from core.settings import Settings
from features.sources.simulator import ResponseModel, SimulatorConfig

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
BATCH = 200  # events per POST /events; a batch also goes once a second
RETRIES = 6  # POST /events tries while the broker is away (503), backing off 0.5 s, 1 s, ... 4 s
STEP = timedelta(seconds=1)  # view < add_to_cart < purchase of one shown item
EVENT_IDS = uuid.UUID("5a3f1c1e-7d4b-4b43-9a39-6c1f0e2a7b11")  # uuid5 namespace: retry-safe ids


def default_week(model: ResponseModel) -> int:
    """The world's last whole week (the one its data ends with)."""
    w = model.world
    return max(0, (w.cfg.days + w.lead) // 7 - 1)


class ResponsiveShop:
    """Visitors and shelves at `per_second` requests until `stop()` or `max_requests`: each
    simulated day (`day_seconds` at that rate) prices every shelf once (`shelves` of them; a day
    stretches to hold them all, leaving no visitors, when they outnumber its requests), the
    other requests are visitors asking for `k` items. `week` is the world's week the responses
    come from, by default its last whole one."""

    def __init__(
        self,
        settings: Settings,
        per_second: float = 20.0,
        seed: int = 7,
        day_seconds: float = 60.0,
        week: int | None = None,
        k: int = 10,
        shelves: int = 200,
        max_requests: int | None = None,
    ) -> None:
        host = urlsplit(settings.gateway_url).hostname
        if host not in LOOPBACK:
            raise ValueError(
                f"the responsive shop generates fake shoppers: it talks only to a gateway on "
                f"this machine (127.0.0.1, localhost or ::1), not {settings.gateway_url}"
            )
        if per_second <= 0 or day_seconds <= 0 or k < 1 or shelves < 0:
            raise ValueError("per_second and day_seconds must be > 0, k >= 1 and shelves >= 0")
        key = settings.api_keys[0].get_secret_value() if settings.api_keys else None
        self.url, self.headers = settings.gateway_url, {"X-API-Key": key} if key else {}
        self.model = ResponseModel.from_config(SimulatorConfig(**settings.simulator))
        self.week = self.model.check_week(default_week(self.model) if week is None else week)
        self.k, self.pause, self.max_requests = k, 1.0 / per_second, max_requests
        r_visit, r_respond, r_shelves, r_sell = np.random.default_rng(seed).spawn(4)
        self._rng = {"visit": r_visit, "respond": r_respond, "sell": r_sell}
        items = np.flatnonzero(self.model.on_sale(self.week))
        grid = np.stack(np.meshgrid(items, np.arange(self.model.world.cfg.stores), indexing="ij"))
        grid = grid.reshape(2, -1).T
        chosen = r_shelves.choice(len(grid), min(shelves, len(grid)), replace=False)
        self.shelves = grid[np.sort(chosen)]  # (n, 2): item, store
        # One day's requests; slot[p] is the shelf asking at position p, -1 a visitor.
        day = max(round(per_second * day_seconds), len(self.shelves), 1)
        self.slot = np.full(day, -1, np.int64)
        n = len(self.shelves)
        self.slot[np.arange(n) * day // max(n, 1)] = np.arange(n)
        self.statuses: Counter[tuple[str, int]] = Counter()  # (path, status): 0 = no answer
        self.events: Counter[str] = Counter()  # accepted, rejected, lost
        self.requests = 0
        self._rows: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="responsive-shop", daemon=True)

    # ---- running -----------------------------------------------------------------------------
    def start(self) -> ResponsiveShop:
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=60)
        return self.summary()

    def run(self, seconds: float) -> dict[str, Any]:
        """Blocks for `seconds` (or until max_requests), then stops."""
        self.start()
        self._thread.join(timeout=seconds)
        return self.stop()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # ---- what it saw -------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        requests: dict[str, dict[str, int]] = {}
        with self._lock:
            statuses, events = sorted(self.statuses.items()), dict(self.events)
            answers = Counter(row["kind"] for row in self._rows)
        for (path, status), n in statuses:
            requests.setdefault(path, {})[str(status)] = n
        days = self.requests // len(self.slot)
        return {"requests": requests, "answers": dict(answers), "events": events,
                "days": days, "week": self.week}  # fmt: skip

    def truth(self) -> pd.DataFrame:
        """One row per answer: request_id, kind (recommendations | prices), model_version, the
        unit (user_id, or item_id and store_id), day, price (quotes), the expectations of the
        answer (click, views, carts, purchases, units, revenue; or units, revenue, profit) and
        what was drawn (drawn_click, drawn_purchases, drawn_units, drawn_revenue)."""
        with self._lock:
            return pd.DataFrame.from_records(list(self._rows))

    # ---- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=10) as client:
            due, flushed = time.monotonic(), time.monotonic()
            while not self._stop.is_set():
                if self.max_requests is not None and self.requests >= self.max_requests:
                    break
                day, shelf = divmod(self.requests, len(self.slot))
                shelf = int(self.slot[shelf])
                self.requests += 1
                if shelf < 0:
                    self._visit(client, day)
                else:
                    self._price(client, day, shelf)
                if len(self._pending) >= BATCH or time.monotonic() - flushed >= 1.0:
                    self._flush(client)
                    flushed = time.monotonic()
                due = max(due + self.pause, time.monotonic() - 1.0)  # a stall is not caught up
                self._stop.wait(max(0.0, due - time.monotonic()))
            self._flush(client)

    def _ask(self, client: httpx.Client, path: str, body: dict) -> tuple[dict | None, str]:
        try:
            answer = client.post(path, json=body)
        except httpx.HTTPError:
            answer = None
        self._count(self.statuses, (path, answer.status_code if answer is not None else 0))
        if answer is None or answer.status_code != 200:
            return None, ""
        return answer.json(), answer.headers.get("X-Request-Id") or uuid.uuid4().hex

    def _visit(self, client: httpx.Client, day: int) -> None:
        model, week = self.model, self.week
        user = model.visitors(1, self._rng["visit"])
        user_id = str(model.user_ids()[user[0]])
        answer, request_id = self._ask(client, "/recommend", {"user_id": user_id, "k": self.k})
        if answer is None:
            return
        ids = [str(item["item_id"]) for item in answer.get("items", [])][: self.k]
        shown = np.full((1, self.k), -1, np.int64)
        shown[0, : len(ids)] = model.item_index(ids)
        got = model.respond_to_recommendations(user, shown, week, self._rng["respond"])
        expected = model.recommendation_expectations(user, shown, week)
        now = datetime.now(UTC)
        for p in np.flatnonzero(got["viewed"][0]):
            event = {"user_id": user_id, "item_id": ids[p], "request_id": request_id}
            price, quantity = float(got["price"][0, p]), int(got["quantity"][0, p])
            self._event(event, "view", now, p)
            if got["carted"][0, p]:
                self._event({**event, "price": price}, "add_to_cart", now + STEP, p)
            if got["bought"][0, p]:
                bought = {**event, "price": price, "quantity": quantity}
                self._event(bought, "purchase", now + 2 * STEP, p)
        paid = np.where(got["bought"][0], got["quantity"][0] * got["price"][0], 0.0)
        drawn = {"click": got["viewed"][0].any(), "purchases": got["bought"][0].sum(),
                 "units": got["quantity"][0].sum(), "revenue": paid.sum()}  # fmt: skip
        self._record(request_id, "recommendations", answer, expected, drawn,
                     user_id=user_id, day=day)  # fmt: skip

    def _price(self, client: httpx.Client, day: int, shelf: int) -> None:
        model, (item, store) = self.model, self.shelves[shelf]
        item_id, store_id = str(model.item_ids()[item]), str(model.store_ids()[store])
        answer, request_id = self._ask(client, "/price", {"item_id": item_id, "store_id": store_id})
        quote = float(answer.get("price") or 0) if answer is not None else 0.0
        if not np.isfinite(quote) or quote <= 0:
            return  # no answer, or none to sell at: the shelf sits this day out
        items, stores, prices = np.array([item]), np.array([store]), np.array([quote])
        units = int(model.sell(items, stores, prices, self.week, self._rng["sell"], days=1)[0])
        if units > 0:  # the till: one purchase per shelf-day
            till = dict(user_id=f"till-{store_id}", item_id=item_id, price=quote, quantity=units)
            self._event({**till, "request_id": request_id}, "purchase", datetime.now(UTC), 0)
        expected = model.price_expectations(items, stores, prices, self.week, days=1)
        self._record(request_id, "prices", answer, expected, {"units": units,
                     "revenue": quote * units}, item_id=item_id, store_id=store_id, day=day,
                     price=quote)  # fmt: skip

    def _record(
        self, request_id: str, kind: str, answer: dict, expected: dict, drawn: dict, **unit: Any
    ) -> None:
        """One answer's row: its unit, the expectations of what was shown and what was drawn."""
        version = answer.get("model_version")
        row = {"request_id": request_id, "kind": kind,
               "model_version": None if version is None else str(version), **unit}  # fmt: skip
        row |= {m: float(v[0]) for m, v in expected.items()}
        row |= {f"drawn_{m}": float(v) for m, v in drawn.items()}
        with self._lock:
            self._rows.append(row)

    def _event(self, fields: dict, event_type: str, at: datetime, position: int) -> None:
        """An event, its id made from the answer, the item's position and the type: a retry of
        the same batch sends the same ids."""
        name = f"{fields['request_id']}:{fields['user_id']}:{position}:{event_type}"
        event_id = uuid.uuid5(EVENT_IDS, name).hex
        self._pending.append(
            {"event_id": event_id, **fields, "event_type": event_type, "timestamp": at.isoformat()}
        )

    def _flush(self, client: httpx.Client) -> None:
        """Posts the pending events in batches; retried with backoff while the broker is away."""
        while self._pending:
            batch = self._pending[:MAX_EVENTS_PER_POST]
            del self._pending[:MAX_EVENTS_PER_POST]
            for attempt in range(RETRIES):
                try:
                    answer = client.post("/events", json={"events": batch})
                except httpx.HTTPError:
                    answer = None
                status = answer.status_code if answer is not None else 0
                self._count(self.statuses, ("/events", status))
                if status == 202:
                    body = answer.json()
                    self._count(self.events, "accepted", int(body.get("accepted", 0)))
                    self._count(self.events, "rejected", len(body.get("rejected") or []))
                    break
                if status not in (0, 503) or attempt == RETRIES - 1:
                    self._count(self.events, "lost", len(batch))
                    break
                time.sleep(min(0.5 * 2**attempt, 4.0))  # longer than the gateway's Retry-After

    def _count(self, counter: Counter, key: Any, n: int = 1) -> None:
        with self._lock:
            counter[key] += n


def compare(truth: pd.DataFrame) -> pd.DataFrame:
    """Per kind and model version: answers, and each expected total beside the drawn one."""
    if truth.empty:
        return pd.DataFrame()
    sums = [c for c in ("click", "purchases", "units", "revenue") if c in truth]
    drawn = [f"drawn_{c}" for c in sums if f"drawn_{c}" in truth]
    keyed = truth.assign(model_version=truth.model_version.fillna("?"))
    out = keyed.groupby(["kind", "model_version"])[sums + drawn].sum(min_count=1)
    out.insert(0, "answers", keyed.groupby(["kind", "model_version"]).size())
    return out.reset_index()
