"""Attribution of recommendations: each answer in the log with the events that followed it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from monitoring.attribution import attribute_recommendations, summarise

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def answer(request_id, minutes, user, items, version="1", arm=None, path="/recommend"):
    return {
        "request_id": request_id, "at": T0 + timedelta(minutes=minutes), "path": path,
        "model": "recommender", "version": version, "colour": "blue", "arm": arm,
        "user_id": user, "item_ids": items,
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


def test_the_summary_is_per_version_and_arm(outcomes):
    summary = summarise(outcomes.reset_index()).set_index("version")
    assert summary.loc["1", "answers"] == 2 and summary.loc["2", "answers"] == 1
    assert summary.loc["1", "click_through_rate"] == 1.0
    assert summary.loc["1", "purchase_rate"] == 0.5 and summary.loc["1", "revenue"] == 6.0
    assert summary.loc["2", "add_to_cart_rate"] == 1.0


def test_no_events_leave_every_answer_without_outcome():
    answers = pd.DataFrame([answer("r1", 0, "u1", ["a"])])
    empty = pd.DataFrame(columns=["timestamp", "user_id", "item_id", "event_type"])
    found = attribute_recommendations(answers, empty)
    assert found[["clicked", "carted", "purchased"]].to_numpy().tolist() == [[False] * 3]
    assert found["revenue"].tolist() == [0.0]
