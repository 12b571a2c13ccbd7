"""The event stream on the running cluster (tests/serving/conftest.py): POST /events through the
gateway, the NATS broker and the consumer into the raw zone and the online store; a click shows
in the next recommendation; every answer lands in the answer log, and `forget` erases it."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import pyarrow.parquet as pq
import pytest

from features.stream.zones import read_answers

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def post(settings, path, body, key=None, headers=None):
    sent = {"X-API-Key": key} if key else {}
    return httpx.post(
        settings.gateway_url + path, json=body, headers={**sent, **(headers or {})}, timeout=30
    )


def view(user: str, item: str, **extra) -> dict:
    return {
        "event_id": uuid.uuid4().hex,
        "user_id": user,
        "item_id": item,
        "timestamp": datetime.now(UTC).isoformat(),
        "event_type": "view",
        **extra,
    }


def until(check, timeout_s: float, every_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(every_s)


def streamed_event_ids(settings) -> set[str]:
    files = settings.raw_dir.glob("*/interactions/stream/date=*/*.parquet")
    return {
        e for f in files for e in pq.read_table(f, columns=["event_id"])["event_id"].to_pylist()
    }


def test_events_are_validated_by_field_and_the_good_ones_land(cluster, api_key):
    user = "shopper-" + uuid.uuid4().hex[:8]
    assert post(cluster, "/events", view(user, "1")).status_code == 401
    good = [view(user, "1"), view(user, "2")]
    bad_price = {**view(user, "3"), "event_type": "purchase", "price": -1.0}
    bad_type = {**view(user, "4"), "event_type": "teleport"}
    answer = post(cluster, "/events", [good[0], bad_price, good[1], bad_type], api_key)
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 2
    assert [r["index"] for r in answer.json()["rejected"]] == [1, 3]
    assert answer.json()["rejected"][0]["error"].startswith("price")
    assert answer.json()["rejected"][1]["error"].startswith("event_type")

    single = post(cluster, "/events", {**view(user, "5"), "quantity": 0}, api_key)
    assert single.status_code == 400 and single.json()["error"].startswith("quantity")
    assert post(cluster, "/events", [], api_key).status_code == 400

    wanted = {e["event_id"] for e in good}
    assert until(lambda: wanted <= streamed_event_ids(cluster), 10)
    assert not {bad_price["event_id"], bad_type["event_id"]} & streamed_event_ids(cluster)


def test_a_click_shows_in_the_next_recommendation_within_a_second(cluster, world, api_key):
    """A shopper never seen before views X: the next answer is personal, because of X."""
    user = "new-shopper-" + uuid.uuid4().hex[:8]
    item = world.items[0]
    first = post(cluster, "/recommend", {"user_id": user, "k": 5}, api_key).json()
    assert first["fallback"] is True

    clicked = time.monotonic()
    assert post(cluster, "/events", view(user, item), api_key).status_code == 202

    def personal():
        answer = post(cluster, "/recommend", {"user_id": user, "k": 5}, api_key).json()
        return answer if not answer["fallback"] else None

    answer = until(personal, 5)
    seconds = time.monotonic() - clicked
    assert answer, "the click never reached the recommender"
    assert seconds <= 1.0, f"the click took {seconds:.2f} s to reach the recommender"
    assert {i["because_of"] for i in answer["items"]} == {item}
    assert all(i["reason"] == f"because you viewed {item}" for i in answer["items"])
    assert item not in [i["item_id"] for i in answer["items"]]  # what was seen is not offered


def test_a_known_shoppers_click_joins_the_history_the_model_sees(cluster, world, api_key):
    """The top recommendation, once viewed, is history: the next answer no longer offers it."""
    user = world.users[0]
    before = post(cluster, "/recommend", {"user_id": user, "k": 10}, api_key).json()
    item = before["items"][0]["item_id"]
    assert post(cluster, "/events", view(user, item), api_key).status_code == 202

    def changed():
        answer = post(cluster, "/recommend", {"user_id": user, "k": 10}, api_key).json()
        return answer if item not in {r["item_id"] for r in answer["items"]} else None

    assert until(changed, 1.0), f"{item} is still offered a second after it was viewed"


def test_every_answer_is_logged_and_forget_erases_it(cluster, world, api_key):
    from features.forget import forget_user

    user = world.users[1]
    item, store = world.priced[0]
    ids = [f"test-{uuid.uuid4().hex}" for _ in range(3)]
    one = post(cluster, "/recommend", {"user_id": user, "k": 4}, api_key, {"X-Request-Id": ids[0]})
    assert one.headers["X-Request-Id"] == ids[0]
    price = post(cluster, "/price", {"item_id": item, "store_id": store}, api_key,
                 {"X-Request-Id": ids[1]})  # fmt: skip
    batch = {"requests": [{"user_id": user, "k": 3}, {"user_id": "nobody-yet", "k": 3}]}
    post(cluster, "/recommend_batch", batch, api_key, {"X-Request-Id": ids[2]})
    made = post(cluster, "/recommend", {"user_id": user, "k": 2}, api_key).headers["X-Request-Id"]
    wanted = {ids[0], ids[1], f"{ids[2]}:0", f"{ids[2]}:1", made}

    def logged():
        table = read_answers(cluster).to_pylist()
        rows = {r["request_id"]: r for r in table if r["request_id"] in wanted}
        return rows if len(rows) == len(wanted) else None

    rows = until(logged, 15, every_s=0.5)
    assert rows, "not every answer reached the answer log"
    recommended = rows[ids[0]]
    assert recommended["model"] == "recommender" and recommended["user_id"] == user
    assert recommended["item_ids"] == [i["item_id"] for i in one.json()["items"]]
    assert recommended["version"] == one.json()["model_version"]
    assert recommended["colour"] in ("blue", "green")
    quoted = rows[ids[1]]
    assert (quoted["item_id"], quoted["store_id"]) == (item, store)
    assert quoted["price"] == pytest.approx(price.json()["price"])
    assert rows[f"{ids[2]}:1"]["fallback"] is True

    forget_user(user, cluster)
    left = [r for r in read_answers(cluster).to_pylist() if r["user_id"] == user]
    assert not left
    assert rows[ids[1]]["request_id"] in {
        r["request_id"] for r in read_answers(cluster).to_pylist()
    }
