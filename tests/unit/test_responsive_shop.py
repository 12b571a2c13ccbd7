"""The responsive shop over real HTTP: a small aiohttp app on 127.0.0.1 stands in for the gateway
(fixed lists of world items, a fixed price, the events it is sent recorded). The shoppers' events
name the answers they respond to, views are of shown items only, purchases carry their price,
every shelf-day that sells posts one till purchase, a seed repeats its events, each answer's
recorded truth is the response model's expectation, and only a loopback gateway is accepted."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np
import pandas as pd
import pytest
from aiohttp import web
from typer.testing import CliRunner

from aisle.cli.app import app
from aisle.responsive_shop import ResponsiveShop, compare, default_week
from core.settings import get_settings
from features.sources.simulator import ResponseModel, SimulatorConfig

SIMULATOR = {"users": 500, "items": 200, "stores": 3, "events": 5000}
PRICE = 8.0  # a shelf sells nothing some days at this price, most days some units
UNKNOWN = "no-such-item"  # an id the world lacks: shown, never viewed


@cache
def world() -> ResponseModel:
    return ResponseModel.from_config(SimulatorConfig(**SIMULATOR))


@cache
def shown_ids() -> list[str]:
    """The world's nine most popular items of the default week, then an unknown id."""
    model = world()
    top = model.popularity_lists(1, 9, default_week(model))[0]
    return [*model.item_ids()[top].tolist(), UNKNOWN]


class FakeGateway:
    """/recommend, /price and /events on 127.0.0.1 in a thread; the first `refuse` event posts
    are answered 503 (the broker away)."""

    def __init__(self, refuse: int = 0) -> None:
        self.events: list[dict] = []
        self.answers: dict[str, dict] = {}  # request id -> what was asked
        self.refuse = refuse
        app = web.Application()
        app.router.add_post("/recommend", self.recommend)
        app.router.add_post("/price", self.price)
        app.router.add_post("/events", self.post_events)
        app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))
        self.runner = web.AppRunner(app)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self.runner.addresses[0][1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _answer(self, asked: dict, body: dict) -> web.Response:
        request_id = uuid.uuid4().hex
        self.answers[request_id] = asked
        return web.json_response(body, headers={"X-Request-Id": request_id})

    async def recommend(self, request: web.Request) -> web.Response:
        asked = await request.json()
        items = [{"item_id": i, "score": 1.0} for i in shown_ids()]
        return self._answer(asked, {"user_id": asked["user_id"], "items": items,
                                    "model_version": "3"})  # fmt: skip

    async def price(self, request: web.Request) -> web.Response:
        asked = await request.json()
        return self._answer(asked, {**asked, "price": PRICE, "cost": 1.0, "model_version": "5"})

    async def post_events(self, request: web.Request) -> web.Response:
        if self.refuse > 0:
            self.refuse -= 1
            return web.json_response({"error": "broker away"}, status=503,
                                     headers={"Retry-After": "0"})  # fmt: skip
        batch = (await request.json())["events"]
        self.events += batch
        return web.json_response({"accepted": len(batch), "rejected": []}, status=202)


@contextmanager
def gateway(refuse: int = 0) -> Iterator[FakeGateway]:
    fake = FakeGateway(refuse)
    try:
        yield fake
    finally:
        fake.close()


def open_shop(tmp_path, fake: FakeGateway, seed: int = 7) -> ResponsiveShop:
    """240 requests: 8 days of 30, 6 shelves priced each day and 24 visitors."""
    settings = get_settings(data_dir=tmp_path, gateway_port=fake.port, simulator=SIMULATOR)
    shop = ResponsiveShop(settings, per_second=1000, seed=seed, day_seconds=0.03, shelves=6,
                          max_requests=240)  # fmt: skip
    shop.run(60)
    return shop


@pytest.fixture(scope="module")
def seen(tmp_path_factory) -> tuple[ResponsiveShop, FakeGateway]:
    with gateway(refuse=1) as fake:
        shop = open_shop(tmp_path_factory.mktemp("shop"), fake)
    return shop, fake


def test_every_request_is_answered_and_counted(seen) -> None:
    shop, fake = seen
    summary = shop.summary()
    assert summary["requests"]["/recommend"] == {"200": 192}
    assert summary["requests"]["/price"] == {"200": 48}  # 6 shelves x 8 days
    assert summary["requests"]["/events"]["503"] == 1  # the broker away once: sent again
    assert summary["events"] == {"accepted": len(fake.events), "rejected": 0}
    assert summary["days"] == 8 and summary["week"] == default_week(world())
    assert len(fake.events) == len({e["event_id"] for e in fake.events})


def test_events_name_the_answers_and_views_only_shown_items(seen) -> None:
    _, fake = seen
    events = pd.DataFrame(fake.events)
    assert set(events.request_id) <= set(fake.answers)
    shoppers = events[~events.user_id.str.startswith("till-")]
    asked = shoppers.request_id.map(lambda r: fake.answers[r]["user_id"])
    assert (shoppers.user_id == asked).all()
    assert set(shoppers.item_id) <= set(shown_ids()) - {UNKNOWN}
    assert {"view", "add_to_cart", "purchase"} <= set(shoppers.event_type)
    # a cart or purchase follows a view of the same item in the same answer, a second later
    views = shoppers[shoppers.event_type == "view"].set_index(["request_id", "item_id"])
    for kind, after in (("add_to_cart", 1), ("purchase", 2)):
        acted = shoppers[shoppers.event_type == kind].set_index(["request_id", "item_id"])
        gap = pd.to_datetime(acted.timestamp) - pd.to_datetime(views.timestamp.loc[acted.index])
        assert (gap == pd.Timedelta(seconds=after)).all()


def test_purchases_carry_price_and_quantity(seen) -> None:
    _, fake = seen
    bought = pd.DataFrame(fake.events).query("event_type == 'purchase'")
    assert len(bought) > 0
    assert (bought.price > 0).all() and (bought.quantity >= 1).all()


def test_one_till_purchase_per_shelf_day_that_sells(seen) -> None:
    shop, fake = seen
    events = pd.DataFrame(fake.events)
    till = events[events.user_id.str.startswith("till-")].set_index("request_id")
    quotes = shop.truth().query("kind == 'prices'").set_index("request_id")
    sold = quotes[quotes.drawn_units > 0]
    assert 0 < len(sold) < len(quotes) and till.index.is_unique  # some shelf-days sell none
    assert sorted(till.index) == sorted(sold.index)
    assert (till.quantity == sold.drawn_units.loc[till.index]).all()
    assert (till.price == PRICE).all() and (till.event_type == "purchase").all()
    assert (till.user_id == "till-" + sold.store_id.loc[till.index]).all()
    assert (quotes.groupby("day").size() == 6).all()  # every shelf once a day


def test_truth_is_the_response_models_expectation(seen) -> None:
    shop, fake = seen
    model, truth = world(), shop.truth()
    assert set(truth.request_id) == set(fake.answers)
    assert dict(truth.groupby("kind").model_version.unique().map(list)) == {
        "prices": ["5"], "recommendations": ["3"]}  # fmt: skip
    week = shop.week
    visits = truth[truth.kind == "recommendations"]
    users = model.user_index(visits.user_id.tolist())
    shown = np.broadcast_to(model.item_index(shown_ids()), (len(users), 10))
    expected = model.recommendation_expectations(users, shown, week)
    for metric, values in expected.items():
        assert visits[metric].to_numpy() == pytest.approx(values)
    quotes = truth[truth.kind == "prices"]
    items, stores = model.item_index(quotes.item_id), model.store_index(quotes.store_id.tolist())
    prices = np.full(len(quotes), PRICE)
    for metric, values in model.price_expectations(items, stores, prices, week, 1).items():
        assert quotes[metric].to_numpy() == pytest.approx(values)
    versions = compare(truth).set_index("kind")
    assert versions.loc["recommendations", "answers"] == len(visits)
    assert versions.loc["recommendations", "click"] == pytest.approx(visits.click.sum())


def test_the_same_seed_gives_the_same_events(seen, tmp_path) -> None:
    def drawn(events: list[dict]) -> list[tuple]:
        return [(e["user_id"], e["item_id"], e["event_type"], e.get("price"), e.get("quantity"))
                for e in events]  # fmt: skip

    first = drawn(seen[1].events)
    with gateway() as fake:
        open_shop(tmp_path, fake)
    assert drawn(fake.events) == first
    with gateway() as fake:
        open_shop(tmp_path, fake, seed=8)
    assert drawn(fake.events) != first


@pytest.mark.parametrize("host", ["10.1.2.3", "shop.example.com", "0.0.0.0"])
def test_only_a_gateway_on_this_machine(tmp_path, host) -> None:
    settings = get_settings(data_dir=tmp_path, serving_host=host, simulator=SIMULATOR)
    with pytest.raises(ValueError, match="only to a gateway on this machine"):
        ResponsiveShop(settings)


def test_the_shop_command_shows_requests_and_expected_beside_observed(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("AISLE_SIMULATOR", json.dumps(SIMULATOR))
    options = ["--minutes", "0.01", "--rate", "200", "--day-seconds", "0.1", "--shelves", "4"]
    with gateway() as fake:
        monkeypatch.setenv("AISLE_GATEWAY_PORT", str(fake.port))
        done = CliRunner().invoke(app, ["shop", *options, "--data-dir", str(tmp_path)])
    assert done.exit_code == 0, done.output
    for shown in ("/recommend", "/price", "/events", "expected vs observed", "recommendations"):
        assert shown in done.output
    monkeypatch.setenv("AISLE_SERVING_HOST", "10.1.2.3")
    refused = CliRunner().invoke(app, ["shop", *options, "--data-dir", str(tmp_path)])
    assert refused.exit_code == 1 and "only to a gateway on this machine" in refused.output
