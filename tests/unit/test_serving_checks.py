"""What a challenger's answers must look like (serving.checks), the per-colour windows the
analysis reads (serving.stats), and secrets that never leave the process (settings)."""

from __future__ import annotations

import math

import pytest

from core.settings import PromotionPolicy, get_settings
from serving.checks import compare, sanity, smoke_requests
from serving.stats import Stats


def answer(*ids, scores=None):
    scores = scores or [1.0] * len(ids)
    return {"items": [{"item_id": i, "score": s} for i, s in zip(ids, scores, strict=True)]}


@pytest.mark.parametrize(
    ("request_", "reply", "problem"),
    [
        ({"user_id": "u", "k": 2}, answer("a", "b", "c"), "3 items for k=2"),
        ({"user_id": "u", "k": 5}, answer("a", "a"), "duplicate items"),
        ({"user_id": "u", "k": 5}, answer("a", "b", scores=[1.0, None]), "not a finite number"),
        ({"user_id": "u", "k": 5}, answer("a", ""), "not a non-empty string"),
        ({"user_id": "u", "current_item": "a"}, answer("a"), "the item the shopper is on"),
        ({"user_id": "u"}, "Internal error", "not a recommendation"),
    ],
)
def test_a_bad_recommendation_is_named(request_, reply, problem):
    (found,) = sanity("recommender", request_, reply)
    assert problem in found


def test_a_good_recommendation_and_batch_pass():
    assert sanity("recommender", {"user_id": "u", "k": 2}, answer("a", "b")) == []
    batch = {"requests": [{"user_id": "u", "k": 1}, {"user_id": "v", "k": 1}]}
    assert sanity("recommender", batch, [answer("a"), answer("b")]) == []
    assert "answered with 1" in sanity("recommender", batch, [answer("a")])[0]


def quote(price, **extra):
    return {
        "price": price,
        "cost": 2.0,
        "current_price": 4.0,
        "expected_units": 10.0,
        "elasticity": -2.0,
        **extra,
    }


@pytest.mark.parametrize(
    ("rails", "reply", "problem"),
    [
        ({"ceiling": 4.5}, quote(4.99), "breaks ceiling"),
        ({"max_change_pct": 10}, quote(5.0), "breaks max_change_pct"),
        ({"price_endings": [0.99]}, quote(4.49), "breaks price_endings"),
        (None, quote(4.123), "whole number of cents"),
        (None, quote(math.inf), "whole number of cents"),
        (None, quote(4.0, elasticity=0.5), "demand rises with price"),
        (None, quote(4.0, expected_units=-1.0), "expected units"),
    ],
)
def test_a_quote_outside_its_guardrails_or_insane_is_named(rails, reply, problem):
    request = {"item_id": "i", "store_id": "s", "guardrails": rails}
    assert any(problem in p for p in sanity("pricing", request, reply))


def test_compare_counts_shadow_errors_and_price_gaps():
    policy = PromotionPolicy(max_price_gap_pct=20, max_error_rate=0.0)
    request = {"item_id": "i", "store_id": "s"}
    pairs = [
        {
            "path": "/price",
            "request": request,
            "live_status": 200,
            "live": quote(4.0),
            "shadow_status": 200,
            "shadow": quote(4.4),
        }
    ]
    ok = compare("pricing", pairs, policy)
    assert ok.passed and ok.figures["max_price_gap_pct"] == pytest.approx(10.0)
    far = [{**pairs[0], "shadow": quote(6.0)}]
    assert "differs by 50%" in compare("pricing", far, policy).problems[0]
    failing = [*pairs, {**pairs[0], "shadow_status": 500, "shadow": None}]
    assert "shadow error rate 50.0%" in compare("pricing", failing, policy).problems[0]
    assert not compare("pricing", [], policy).passed  # nothing compared is not a pass


def test_smoke_asks_fixed_inputs_then_recent_ones():
    recent = [{"path": "/recommend", "body": {"user_id": str(n)}} for n in range(15)]
    requests = smoke_requests("recommender", recent)
    assert requests[0][2] == (200,) and requests[1][2] == (400,)
    assert [r[1]["user_id"] for r in requests[-10:]] == [str(n) for n in range(5, 15)]


def test_stats_windows_count_errors_and_percentiles():
    stats = Stats()
    for ms in range(1, 101):
        stats.record("recommender", "blue", "live", 200, float(ms))
    stats.record("recommender", "blue", "live", 500, 5.0)
    stats.record("recommender", "blue", "live", 0, 5.0)  # never answered
    stats.record("recommender", "blue", "live", 404, 5.0)
    window = stats.window("recommender", "blue")
    assert (window.requests, window.errors, window.client_errors) == (103, 2, 1)
    assert window.p99_ms == pytest.approx(99.0, abs=1.5)
    assert stats.window("recommender", "green").requests == 0


def test_secrets_are_never_exported_with_the_settings():
    settings = get_settings(admin_token="s3cret-token", api_keys=["k3y-one"])
    exported = " ".join(settings.to_env().values())
    assert "s3cret-token" not in exported and "k3y-one" not in exported
    assert "AISLE_ADMIN_TOKEN" not in settings.to_env()
    assert settings.secrets_env() == {
        "AISLE_ADMIN_TOKEN": "s3cret-token",
        "AISLE_API_KEYS": '["k3y-one"]',
    }
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("extras", "params", "expected"),
    [
        # the newest challenger per model among the events
        (
            [{"model": "pricing", "version": "3"}, {"model": "pricing", "version": "12"},
             {"model": "recommender", "version": "2"}],
            {"model": "recommender", "version": None},
            [("pricing", "12"), ("recommender", "2")],
        ),
        # a manual run: its params (no version: the challenger alias)
        ([], {"model": "pricing", "version": None}, [("pricing", None)]),
        ([], {"model": "recommender", "version": "7"}, [("recommender", "7")]),
    ],
)  # fmt: skip
def test_which_promotions_a_run_makes(extras, params, expected):
    from serving.deploy import promotions_to_run

    assert promotions_to_run(extras, params) == expected
