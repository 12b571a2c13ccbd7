"""A shop backend's steady trickle of scoring requests, for the loop while it runs unattended.

Blue-green promotion compares the challenger with the live colour on live traffic (mirrored,
or recent requests replayed): with no shop in front of the gateway there is nothing to compare,
and the promotion is rightly refused. The loop (`aisle demo`, its tests and benchmark) runs this
in a background thread: shoppers of the interactions timeline asking for recommendations, item
and store pairs of the sales timeline asking for prices, paced (default 4 a second) so it does
not compete with training on two cores. Every answer's status is counted: the summary reports
what the shop saw while models were trained and promoted under it.

Its shoppers also act on what they are shown: after a recommendation, one in two views the first
item, posted to the gateway's POST /events with the answer's request id (X-Request-Id), as a
shop's front end would. The request ids of every answer are kept, so the loop can check that the
answer log holds each one.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import httpx
import pandas as pd

from core.settings import Settings

Request = tuple[str, dict]


def shop_requests(settings: Settings, n: int = 300, seed: int = 7) -> list[Request]:
    """Recommendation requests for the interaction timeline's most recent shoppers and price
    requests for the sales timeline's most recent item x store pairs, interleaved."""
    from features.ingest import source_of
    from features.landing import prepared_path

    rng = random.Random(seed)
    found: list[Request] = []
    interactions = prepared_path(settings, source_of(settings, "interactions", "interactions")
                                 .dataset, "interactions")  # fmt: skip
    if interactions.exists():
        events = pd.read_parquet(interactions, columns=["user_id", "timestamp"])
        users = events.sort_values("timestamp").user_id.drop_duplicates(keep="last").tail(n)
        found += [("/recommend", {"user_id": str(u), "k": 10}) for u in users]
    sales_path = prepared_path(settings, source_of(settings, "sales", "sales").dataset, "sales")
    if sales_path.exists():
        sales = pd.read_parquet(sales_path, columns=["item_id", "store_id", "week_start"])
        recent = sales[sales.week_start == sales.week_start.max()]
        pairs = recent[["item_id", "store_id"]].drop_duplicates().head(n)
        found += [
            ("/price", {"item_id": str(r.item_id), "store_id": str(r.store_id)})
            for r in pairs.itertuples()
        ]
    rng.shuffle(found)
    return found


class ShopTraffic:
    """Requests at `per_second`, round-robin over `requests`, until `stop()`."""

    def __init__(self, settings: Settings, requests: list[Request], per_second: float = 4.0):
        if not requests:
            raise ValueError("the shop has no requests to send")
        key = settings.api_keys[0].get_secret_value() if settings.api_keys else None
        self.url = settings.gateway_url
        self.headers = {"X-API-Key": key} if key else {}
        self.requests = requests
        self.pause = 1.0 / per_second
        self.statuses: Counter[tuple[str, int]] = Counter()  # (path, status): 0 = no answer
        self.answered: set[str] = set()  # request ids of the answers (200)
        # path -> (request, answer) of the latest 200: the demo shows one of each
        self.samples: dict[str, tuple[dict, dict]] = {}
        self.view_share = 0.5
        self._rng = random.Random(11)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shop-traffic", daemon=True)

    def start(self) -> ShopTraffic:
        self._thread.start()
        return self

    def stop(self) -> dict[str, dict[str, int]]:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.summary()

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (path, status), n in sorted(self.statuses.items()):
            out.setdefault(path, {})[str(status)] = n
        return out

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=10) as client:
            n = 0
            while not self._stop.is_set():
                path, body = self.requests[n % len(self.requests)]
                n += 1
                try:
                    answer = client.post(path, json=body)
                except httpx.HTTPError:
                    answer = None
                self.statuses[(path, answer.status_code if answer else 0)] += 1
                if answer is not None and answer.status_code == 200:
                    request_id = answer.headers.get("X-Request-Id", "")
                    self.answered.add(request_id)
                    self.samples[path] = (body, answer.json())
                    if path == "/recommend" and self._rng.random() < self.view_share:
                        self._view_first(client, body["user_id"], answer.json(), request_id)
                time.sleep(self.pause)

    def _view_first(self, client: httpx.Client, user: str, answer: dict, request_id: str) -> None:
        """The shopper views the first item shown: an event on the stream, naming the answer."""
        if not answer.get("items"):
            return
        event = {
            "event_id": uuid.uuid4().hex,
            "user_id": user,
            "item_id": answer["items"][0]["item_id"],
            "timestamp": datetime.now(UTC).isoformat(),
            "event_type": "view",
            "request_id": request_id,
        }
        try:
            status = client.post("/events", json=event).status_code
        except httpx.HTTPError:
            status = 0
        self.statuses[("/events", status)] += 1
