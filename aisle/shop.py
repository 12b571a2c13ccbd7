"""A shop backend's steady trickle of scoring requests, for the loop while it runs unattended.

Blue-green promotion compares the challenger with the live colour on live traffic (mirrored,
or recent requests replayed): with no shop in front of the gateway there is nothing to compare,
and the promotion is rightly refused. The loop (`aisle demo`, its tests and benchmark) runs this
in a background thread: shoppers of the interactions timeline asking for recommendations, item
and store pairs of the sales timeline asking for prices, paced (default 4 a second) so it does
not compete with training on two cores. Every answer's status is counted: the summary reports
what the shop saw while models were trained and promoted under it.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

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
                    status = client.post(path, json=body).status_code
                except httpx.HTTPError:
                    status = 0
                self.statuses[(path, status)] += 1
                time.sleep(self.pause)
