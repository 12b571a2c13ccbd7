"""Attribution of recommendations: each answer in the log with the events that followed it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring.attribution import (
    attribute_prices,
    attribute_recommendations,
    summarise,
    summarise_prices,
)

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def answer(request_id, minutes, user, items, version="1", arm=None, path="/recommend"):
    return {
        "request_id": request_id, "at": T0 + timedelta(minutes=minutes), "path": path,
        "model": "recommender", "version": version, "colour": "blue", "experiment": None,
        "arm": arm, "user_id": user, "item_ids": items,
    }  # fmt: skip


def event(minutes, user, item, kind="view", request_id=None, price=None, quantity=None):
    return {
        "timestamp": T0 + timedelta(minutes=minutes), "user_id": user, "item_id": item,
        "event_type": kind, "request_id": request_id, "price": price, "quantity": quantity,
    }  # fmt: skip


@pytest.fixture
def outcomes():
    answers = pd.DataFrame(
        [
            answer("r1", 0, "u1", ["a", "b", "c"]),
            answer("r2", 10, "u1", ["b", "d"]),
            answer("r3", 0, "u2", ["a"], version="2"),
            {**answer("p1", 0, "u2", None, path="/price"), "item_ids": None},
        ]
    )
    events = pd.DataFrame(
        [
            event(5, "u1", "b"),  # last touch: r1 (r2 comes later)
            event(15, "u1", "b"),  # last touch: r2, the latest answer that showed b
            event(20, "u1", "c", request_id="r1"),  # named, and r1 showed c
            event(21, "u1", "d", request_id="r1"),  # named, but r1 never showed d: not credited
            event(120, "u1", "b", kind="purchase", price=3.0, quantity=2),  # r2, within a day
            event(45, "u2", "a"),  # 45 min after r3: outside the 30-minute click window
            event(50, "u2", "a", kind="add_to_cart"),  # inside the purchase window: carted
            event(5, "u3", "a"),  # another shopper: credits nobody
        ]
    )
    return attribute_recommendations(answers, events).set_index("request_id")


def test_each_event_goes_to_the_answer_it_names_or_the_last_that_showed_the_item(outcomes):
    assert list(outcomes.index) == ["r1", "r2", "r3"]  # the price answer is not a recommendation
    assert outcomes.loc["r1", ["clicked", "carted", "purchased"]].tolist() == [True, False, False]
    assert outcomes.loc["r2", ["clicked", "carted", "purchased"]].tolist() == [True, False, True]
    assert outcomes.loc["r2", "revenue"] == 6.0 and outcomes.loc["r1", "revenue"] == 0.0
    assert outcomes.loc["r3", ["clicked", "carted", "purchased"]].tolist() == [False, True, False]
    assert outcomes["shown"].tolist() == [3, 2, 1]


def test_counts_are_recommended_items_viewed_carted_and_bought(outcomes):
    # r1: b viewed (last touch) and c viewed (named): two clicks; d was never shown by r1
    assert outcomes[["clicks", "carts", "purchases"]].to_dict("index") == {
        "r1": {"clicks": 2, "carts": 0, "purchases": 0},
        "r2": {"clicks": 1, "carts": 0, "purchases": 1},
        "r3": {"clicks": 0, "carts": 1, "purchases": 0},
    }
    assert "experiment" in outcomes.columns


def test_the_summary_is_per_version_and_arm(outcomes):
    summary = summarise(outcomes.reset_index()).set_index("version")
    assert summary.loc["1", "answers"] == 2 and summary.loc["2", "answers"] == 1
    assert summary.loc["1", "click_through_rate"] == 1.0
    assert summary.loc["1", "purchase_rate"] == 0.5 and summary.loc["1", "revenue"] == 6.0
    assert summary.loc["2", "add_to_cart_rate"] == 1.0


def test_a_purchase_without_a_price_leaves_the_revenue_unknown_not_zero():
    answers = pd.DataFrame([answer("r1", 0, "u1", ["a", "b"]), answer("r2", 0, "u2", ["a"])])
    events = pd.DataFrame(
        [
            event(60, "u1", "a", kind="purchase", price=2.0, quantity=1),
            event(61, "u1", "b", kind="purchase", price=None, quantity=1),  # the export has none
            event(60, "u2", "a", kind="purchase", price=4.0, quantity=2),
        ]
    )
    found = attribute_recommendations(answers, events).set_index("request_id")
    assert found.loc["r1", "purchases"] == 2 and np.isnan(found.loc["r1", "revenue"])
    assert found.loc["r2", "revenue"] == 8.0
    summary = summarise(found.reset_index()).iloc[0]
    # the mean and sum are over the known revenue; the unknown one is counted, not zeroed
    assert summary[["revenue", "revenue_per_answer", "revenue_unknown"]].tolist() == [8.0, 8.0, 1]


def test_no_events_leave_every_answer_without_outcome():
    answers = pd.DataFrame([answer("r1", 0, "u1", ["a"])])
    empty = pd.DataFrame(columns=["timestamp", "user_id", "item_id", "event_type"])
    found = attribute_recommendations(answers, empty)
    assert found[["clicked", "carted", "purchased"]].to_numpy().tolist() == [[False] * 3]
    assert found["revenue"].tolist() == [0.0]


def quote(request_id, minutes, item, price, cost=None, path="/price", version="3", arm="control"):
    context = "{}" if cost is None else f'{{"cost": {cost}, "current_price": 9.0}}'
    return {
        "request_id": request_id, "at": T0 + timedelta(minutes=minutes), "path": path,
        "model": "pricing", "version": version, "colour": "green", "experiment": "x1",
        "arm": arm, "item_id": item, "store_id": "s1", "context": context, "price": price,
        "item_ids": None,
    }  # fmt: skip


def test_a_quote_earns_the_sales_that_name_it_within_the_window():
    answers = pd.DataFrame(
        [
            quote("q1", 0, "a", 4.0, cost=2.5),
            quote("b1:0", 5, "b", 10.0, cost=6.0, path="/price_batch", arm="treatment"),
            quote("b1:1", 5, "c", 3.0, path="/price_batch", arm="treatment"),  # no cost given
            quote("b1:2", 5, "d", 3.0, path="/price_batch", arm="treatment"),  # no cost, no sale
            answer("r1", 0, "u1", ["a"]),  # a recommendation: no quote
        ]
    )
    till = "till"
    events = pd.DataFrame(
        [
            event(10, till, "a", "purchase", request_id="q1", price=4.0, quantity=3),
            event(20, till, "a", "purchase", request_id="q1", price=4.0),  # quantity 1
            event(60 * 25, till, "a", "purchase", request_id="q1", price=4.0),  # after a day
            event(30, till, "a", "purchase", price=4.0, quantity=5),  # names no quote
            event(30, till, "b", "purchase", request_id="q1", price=4.0),  # q1 quoted a, not b
            event(40, till, "a", "view", request_id="q1"),  # not a sale
            event(50, till, "b", "purchase", request_id="b1:0", price=9.5, quantity=2),
            event(50, till, "c", "purchase", request_id="b1:1", price=3.0),
        ]
    )
    found = attribute_prices(answers, events, timedelta(days=1)).set_index("request_id")
    assert list(found.index) == ["q1", "b1:0", "b1:1", "b1:2"]
    assert found.loc["q1", ["units", "revenue", "profit"]].tolist() == [4, 16.0, 6.0]
    assert found.loc["b1:0", ["units", "revenue", "profit"]].tolist() == [2, 19.0, 7.0]
    assert found.loc["b1:0", "cost"] == 6.0 and found.loc["q1", "arm"] == "control"
    assert found.loc["b1:1", ["units", "revenue"]].tolist() == [1, 3.0]
    assert np.isnan(found.loc["b1:1", "profit"])  # sold at an unknown cost
    assert found.loc["b1:2", ["units", "revenue", "profit"]].tolist() == [0, 0.0, 0.0]

    summary = summarise_prices(found.reset_index()).set_index("arm")
    assert summary.loc["control", ["quotes", "units", "revenue", "profit"]].tolist() == [
        1, 4, 16.0, 6.0,
    ]  # fmt: skip
    assert summary.loc["treatment", ["quotes", "units", "profit_unknown"]].tolist() == [3, 3, 1]
    assert summary.loc["treatment", "profit_per_quote"] == pytest.approx(7.0 / 2)
