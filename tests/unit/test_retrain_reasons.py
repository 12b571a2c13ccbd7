"""What retrains a model (monitoring.retrain.retrain_reason): its realised performance below its
band, or no champion yet; drift alone is reported unless a setting says otherwise; every
decision names its reason."""

from __future__ import annotations

import pytest

from core.settings import get_settings
from monitoring.retrain import retrain_reason

IN_BAND = {"judged": True, "dropped": False, "reason": "ndcg@10 0.05 inside [0.04, 0.07]"}
DROPPED = {"judged": True, "dropped": True, "reason": "ndcg@10 0.02 below its band [0.04, 0.07]"}


def record(drift: bool, performance: dict | None, champion: str | None = "3") -> dict:
    return {"drift": drift, "drifted_columns": ["category"] if drift else [],
            "champion_version": champion, "performance": performance}  # fmt: skip


@pytest.mark.parametrize(
    ("drift", "performance", "says"),
    [
        (False, DROPPED, "performance: ndcg@10 0.02 below its band"),
        (True, DROPPED, "performance: ndcg@10 0.02 below its band"),
        (True, IN_BAND, "no retrain: drift in category reported, but the realised performance"),
        (False, IN_BAND, "no retrain: no drift confirmed and the realised performance is inside"),
        (True, {"judged": False, "reason": "12 users (30 needed)"},
         "no retrain: drift in category; performance not judged (12 users (30 needed))"),
    ],
)  # fmt: skip
def test_performance_retrains_and_drift_is_reported(drift, performance, says):
    assert retrain_reason(record(drift, performance), get_settings()).startswith(says)


def test_drift_retrains_when_the_setting_says_so():
    settings = get_settings(drift={"retrain_on_drift": True})
    assert retrain_reason(record(True, IN_BAND), settings) == "drift in category"


def test_no_champion_asks_for_a_first_model_whatever_the_drift():
    settings = get_settings()
    assert retrain_reason(record(False, None, None), settings) == "no champion yet: the first model"
    assert retrain_reason(record(True, None, None), settings).endswith("(drift in category)")


def test_a_performance_evaluation_that_fails_is_reported_not_retrained_on(monkeypatch, caplog):
    from monitoring import monitor, performance

    def broken(*args, **kwargs):
        raise OSError("the feature store is unreachable")

    monkeypatch.setattr(performance, "realised_performance", broken)
    found = monitor._realised_performance(get_settings(), "pricing", None, None, "3")
    assert found["judged"] is False and "the feature store is unreachable" in found["reason"]
    assert "realised performance of version 3 failed" in caplog.text
    said = retrain_reason(record(True, found), get_settings())
    assert said.startswith("no retrain: drift in category; performance not judged (could not")
