"""The event stream's pure parts: the event contract, a session's merge, what the consumer makes
of a batch of messages, the answer log's records and sampling, and which processes the stack
runs for it. The running broker, consumer and gateway: tests/serving/test_events.py and
tests/integration/test_event_stream_faults.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.events import Event, parse_events
from core.settings import get_settings
from features.stream.consumer import decode_answers, decode_events
from features.stream.session import merge
from serving.answer_log import MAX_QUEUED, AnswerLog, answer_records, kept

NOW = datetime.now(UTC)


def event(n: int, minutes_ago: float = 0, user: str = "u1", item: str | None = None) -> Event:
    return Event(
        event_id=f"e{n}",
        user_id=user,
        item_id=item or f"i{n}",
        timestamp=NOW - timedelta(minutes=minutes_ago),
        event_type="view",
    )


def test_an_event_is_validated_by_field_and_times_are_utc():
    good, bad = parse_events(
        [
            {"event_id": "a", "user_id": "u", "item_id": "i", "timestamp": 1_700_000_000,
             "event_type": "view"},
            {"event_id": "b", "user_id": "u", "item_id": "i",
             "timestamp": "2026-01-01T02:00:00+02:00", "event_type": "view"},
            {"event_id": "c", "user_id": "u", "item_id": "i", "timestamp": "2026-01-01T00:00:00",
             "event_type": "purchase", "price": 0},
            {"event_id": "d", "user_id": "u", "item_id": "i", "timestamp": "2026-01-01T00:00:00",
             "event_type": "view", "quantity": 0},
            {"event_id": "e", "user_id": "u", "item_id": "i",
             "timestamp": (NOW + timedelta(hours=1)).isoformat(), "event_type": "view"},
            {"event_id": "f", "user_id": "u u", "item_id": "i", "timestamp": 1,
             "event_type": "view"},
            {"event_id": "g", "user_id": "u", "item_id": "i", "timestamp": 1, "event_type": "view",
             "colour": "red"},
        ]
    )  # fmt: skip
    assert [e.event_id for e in good] == ["a", "b"]
    assert good[1].timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert good[1].record()["timestamp"] == "2026-01-01T00:00:00Z"
    fields = [b["error"].split(":")[0] for b in bad]
    assert fields == ["price", "quantity", "timestamp", "user_id", "colour"]
    assert [b["index"] for b in bad] == [2, 3, 4, 5, 6]


def test_a_session_is_newest_first_and_ends_after_the_gap():
    settings = get_settings(events={"session_gap_minutes": 30, "recent_items": 3})
    row = merge(None, [event(1, 120), event(2, 10), event(3, 5), event(4, 1, item="i2")], settings)
    assert row["event_ids"] == ["e4", "e3", "e2", "e1"]
    assert row["recent_item_ids"] == ["i2", "i3", "i1"]  # distinct, capped at 3
    assert row["session_item_ids"] == ["i2", "i3"]  # the event 2 h ago began an older session
    assert (row["session_events"], row["events_30m"]) == (3, 3)
    assert row["last_event_at"] == datetime.fromtimestamp(row["event_times_ms"][0] / 1000, UTC)


def test_merging_is_idempotent_and_keeps_what_was_stored():
    settings = get_settings()
    first = merge(None, [event(1, 3), event(2, 2)], settings)
    assert merge(first, [event(2, 2), event(1, 3)], settings) is None  # delivered again
    later = merge(first, [event(3, 1), event(3, 1)], settings)  # twice in one batch, too
    assert later["event_ids"] == ["e3", "e2", "e1"]
    late = merge(later, [event(0, 4)], settings)  # an event that arrives late sorts by its time
    assert late["event_ids"] == ["e3", "e2", "e1", "e0"]
    assert late["session_item_ids"][0] == "i3"


def test_the_consumer_dead_letters_what_is_not_an_event_and_keeps_the_rest():
    good = event(1).record()
    messages = [
        json.dumps([good, {**good, "event_id": "x", "price": -1}]).encode(),
        json.dumps(good | {"event_id": "single"}).encode(),
        b"\xff not json",
        b"[1, 2]",
    ]
    events, dead = decode_events(messages)
    assert [e.event_id for e in events] == ["e1", "single"]
    reasons = {reason.split(":")[0]: (raw, reason) for raw, reason in dead}
    assert sorted(reasons) == ["invalid_event", "not_an_event", "not_json"] and len(dead) == 3
    raw, reason = reasons["invalid_event"]
    assert "price" in reason and json.loads(raw)["event_id"] == "x"
    records, dead = decode_answers([b'[{"request_id": "r", "at": "2026-01-01T00:00:00"}, {}]'])
    assert [r["request_id"] for r in records] == ["r"] and dead[0][1].startswith("not_an_answer")


def test_answer_records_name_each_answer_of_a_call():
    recommended = {
        "user_id": "u1", "items": [{"item_id": "a", "score": 0.9}, {"item_id": "b", "score": 0.5}],
        "fallback": False, "model_version": "7",
    }  # fmt: skip
    one = answer_records("/recommend", "recommender", "blue", "r1",
                         {"user_id": "u1", "k": 2, "category": "x"}, recommended, 200)  # fmt: skip
    assert one[0]["request_id"] == "r1" and one[0]["item_ids"] == ["a", "b"]
    assert one[0]["scores"] == [0.9, 0.5] and one[0]["version"] == "7"
    assert one[0]["context"] == {"k": 2, "category": "x"} and one[0]["colour"] == "blue"
    batch = answer_records("/recommend_batch", "recommender", "green", "r2",
                           {"requests": [{"user_id": "u1"}, {"user_id": "u2"}]},
                           [recommended, {**recommended, "fallback": True}], 200)  # fmt: skip
    assert [r["request_id"] for r in batch] == ["r2:0", "r2:1"] and batch[1]["fallback"]
    prices = answer_records("/price_batch", "pricing", "blue", "r3",
                            {"requests": [{"item_id": "1", "store_id": "2"},
                                          {"item_id": "9", "store_id": "2"}]},
                            {"results": [{"price": 2.5}, {"status": 404, "error": "no"}],
                             "model_version": "3"}, 200)  # fmt: skip
    assert len(prices) == 1 and prices[0]["price"] == 2.5 and prices[0]["item_id"] == "1"
    assert (
        answer_records("/recommend", "recommender", "blue", "r4", {"user_id": "u"}, [], 200) == []
    )


def test_sampling_keeps_its_share_by_request_and_the_queue_counts_what_it_drops():
    ids = [f"request-{n}" for n in range(20_000)]
    share = sum(kept(i, 0.25) for i in ids) / len(ids)
    assert share == pytest.approx(0.25, abs=0.02)  # 4 sigma of a binomial share at n=20,000
    assert all(kept(i, 1.0) for i in ids[:100]) and not any(kept(i, 0.0) for i in ids[:100])

    class Count:
        n = 0

        def inc(self, by: int) -> None:
            self.n += by

    dropped = Count()
    log = AnswerLog(get_settings(), dropped)
    log.add([{"request_id": str(n)} for n in range(MAX_QUEUED + 5)])
    assert len(log.queue) == MAX_QUEUED and dropped.n == 5


def test_the_stack_runs_its_own_broker_unless_one_is_configured(tmp_path):
    from aisle.stack.roster import components

    local = get_settings(data_dir=tmp_path)
    names = [c.name for c in components(local)]
    assert names.index("events-broker") < names.index("events-consumer") < names.index("supervisor")
    broker = next(c for c in components(local) if c.name == "events-broker")
    assert "-js" in broker.command and str(tmp_path / "events" / "broker") in broker.command
    assert local.broker_url == "nats://127.0.0.1:8730"
    kafka = get_settings(data_dir=tmp_path, events={"broker": "kafka", "url": "kafka:9092"})
    assert "events-broker" not in [c.name for c in components(kafka)]
    assert "events-consumer" in [c.name for c in components(kafka)]


def test_the_direct_session_write_stores_what_feasts_push_would(tmp_path):
    from features.store import apply
    from features.stream.session import SessionStore

    settings = get_settings(data_dir=tmp_path / "data")
    apply(settings)
    sessions = SessionStore(settings)
    row = merge(None, [event(1, 40), event(2, 3), event(3, 1, item="i1")], settings)
    sessions.write([("direct", NOW, row)])
    sessions.push([("pushed", NOW, row)])
    found = sessions.lookup(["direct", "pushed"])
    assert found.known == [True, True] and found.as_of[0] == found.as_of[1]
    assert found.row(0) == found.row(1)
    assert found.row(0)["event_ids"] == ["e3", "e2", "e1"]
    assert found.row(0)["session_item_ids"] == ["i1", "i2"]


def test_a_purchase_without_its_price_is_accepted_as_the_etl_curates_it():
    good, bad = parse_events(
        [{"event_id": "p", "user_id": "u", "item_id": "i", "timestamp": 1_700_000_000,
          "event_type": "purchase"}]
    )  # fmt: skip
    assert bad == [] and good[0].price is None and "price" not in good[0].record()
