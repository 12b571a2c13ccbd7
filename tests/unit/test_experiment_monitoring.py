"""Online experiments read from the zones: the answer log and the event stream attributed into the
outcomes zone (monitoring.outcomes), an experiment analysed from it (monitoring.experiment_analysis)
and its report (monitoring.experiment_report), each logged to MLflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from core.arms import arm_of
from core.events import Event
from core.files import write_parquet_atomic
from core.settings import get_settings
from features.stream.zones import write_answers, write_raw_events
from monitoring.experiment_analysis import analyse_experiment
from monitoring.experiment_report import report_path, status_table
from monitoring.outcomes import SCHEMAS, attribute_interval, outcome_dir, read_outcomes

DAY = datetime(2026, 3, 3, tzinfo=UTC)  # the attributed interval: [DAY, DAY + 1 day)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """One data folder (and one MLflow store: creating one costs seconds) for the module; each
    test writes its own days."""
    return get_settings(data_dir=tmp_path_factory.mktemp("experiments") / "data")


def at(hours: float) -> str:
    return (DAY + timedelta(hours=hours)).isoformat()


def recommend(rid, hours, user, items, arm="control", version="1", colour="blue", **more):
    return {"request_id": rid, "at": at(hours), "path": "/recommend", "model": "recommender",
            "version": version, "colour": colour, "experiment": "e1", "arm": arm, "status": 200,
            "user_id": user, "item_ids": items, "scores": [1.0] * len(items), **more}  # fmt: skip


def quote(rid, hours, item, store, price, context, path="/price"):
    return {"request_id": rid, "at": at(hours), "path": path, "model": "pricing", "version": "4",
            "colour": "green", "experiment": "p1", "arm": "treatment", "status": 200,
            "item_id": item, "store_id": store, "price": price, "context": context}  # fmt: skip


def event(eid, hours, user, item, kind, request_id=None, price=None, quantity=None):
    moment = DAY + timedelta(hours=hours)
    return Event(event_id=eid, user_id=user, item_id=item, timestamp=moment, event_type=kind,
                 request_id=request_id, price=price, quantity=quantity)  # fmt: skip


ANSWERS = [
    recommend("r1", 10, "u1", ["a", "b"]),
    recommend("r2:0", 11, "u2", ["a", "c"], "treatment", "2", "green", path="/recommend_batch"),
    recommend("r2:1", 11, "u3", ["b"], "treatment", "2", "green", path="/recommend_batch"),
    quote("q1", 9, "a", "s1", 5.0, {"cost": 3.0, "current_price": 5.5}),
    quote("q2:0", 20, "b", "s1", 4.0, {"cost": 2.0}, path="/price_batch"),
    quote("q2:1", 20, "c", "s2", 6.0, {}, path="/price_batch"),
    recommend("r9", 12, "u4", [], path="/events"),  # no model's answer: skipped
    recommend("r3", 30, "u1", ["b"]),  # the next day: outside the interval, seen by last touch
]
EVENTS = [
    event("e1", 10.1, "u1", "a", "view", request_id="r1"),  # named: r1
    event("e2", 10.2, "u1", "b", "view"),  # last touch: r1
    event("e3", 12, "u1", "b", "purchase", price=2.0, quantity=3),  # last touch: r1
    event("e4", 31, "u1", "b", "purchase", price=2.0),  # after r3 showed b: r3's revenue
    event("e5", 11.5, "u2", "c", "add_to_cart", request_id="r2:0"),
    event("t1", 11, "till", "a", "purchase", request_id="q1", price=5.0, quantity=4),
    event("t2", 33, "till", "b", "purchase", request_id="q2:0", price=4.0, quantity=2),  # +13 h
    event("t3", 45, "till", "c", "purchase", request_id="q2:1", price=6.0),  # +25 h: too late
]


def test_an_interval_is_attributed_into_the_outcomes_zone_once_per_answer(settings):
    write_answers(settings, ANSWERS)
    write_raw_events(settings, "movielens", EVENTS)
    write_raw_events(settings, "movielens", EVENTS[:2])  # a batch delivered twice

    first = attribute_interval(settings, DAY, DAY + timedelta(days=1))
    again = attribute_interval(settings, DAY, DAY + timedelta(days=1))

    assert first["answers"] == 7 and first["skipped"] == 1
    assert first["outcomes"] == {"recommender": 3, "pricing": 3}  # answers = outcomes + skipped
    assert sorted(first["files"]) == sorted(
        str(outcome_dir(settings, model, "2026-03-03") / "part.parquet")
        for model in ("recommender", "pricing")
    )
    assert again["files"] == first["files"] and again["mlflow_run_id"] == first["mlflow_run_id"]
    assert not outcome_dir(settings, "recommender", "2026-03-04").exists()  # r3: not this run's
    quiet = attribute_interval(settings, DAY - timedelta(days=1), DAY)
    assert (quiet["answers"], quiet["outcomes"], quiet["files"]) == (
        0,
        {"recommender": 0, "pricing": 0},
        [],
    )

    shown = read_outcomes(settings, "recommender").set_index("request_id")
    assert shown[["clicks", "carts", "purchases", "revenue"]].to_dict("index") == {
        "r1": {"clicks": 2, "carts": 0, "purchases": 1, "revenue": 6.0},
        "r2:0": {"clicks": 0, "carts": 1, "purchases": 0, "revenue": 0.0},
        "r2:1": {"clicks": 0, "carts": 0, "purchases": 0, "revenue": 0.0},
    }
    assert shown.loc["r2:0", ["experiment", "arm", "carted"]].tolist() == ["e1", "treatment", True]

    quotes = read_outcomes(settings, "pricing").set_index("request_id")
    assert quotes[["units", "revenue", "profit"]].to_dict("index") == {
        "q1": {"units": 4, "revenue": 20.0, "profit": 8.0},  # (5 - 3) x 4
        "q2:0": {"units": 2, "revenue": 8.0, "profit": 4.0},  # sold 13 h later: in the window
        "q2:1": {"units": 0, "revenue": 0.0, "profit": 0.0},  # no cost, but nothing sold
    }
    assert np.isnan(quotes.loc["q2:1", "cost"]) and quotes.loc["q1", "cost"] == 3.0

    from mlflow import MlflowClient

    metrics = MlflowClient().get_run(first["mlflow_run_id"]).data.metrics
    assert metrics["recommender.v1.blue.control.purchase_rate"] == 1.0
    assert metrics["pricing.v4.green.treatment.profit"] == 12.0


def exposures(experiment_id, start, n_users=300, seed=1):
    """A recommender experiment's outcomes over three days: the treatment buys 0.6 items per
    answer, the control 0.2 (a known, strong effect); each shopper is in the arm the gateway's
    hash gives and bought before the start in proportion to their taste (the CUPED covariate)."""
    rng = np.random.default_rng(seed)
    taste = rng.gamma(2.0, 0.5, n_users)
    rows = []
    for u in range(n_users):
        user = f"u{u}"
        arm = arm_of(experiment_id, user, 0.5)
        rate = (0.6 if arm == "treatment" else 0.2) * taste[u]
        rows.append((start - timedelta(days=2), user, None, None, rng.poisson(taste[u])))
        for _ in range(rng.integers(1, 4)):
            moment = start + timedelta(hours=float(rng.uniform(0, 72)))
            rows.append((moment, user, experiment_id, arm, rng.poisson(rate)))
    frame = pd.DataFrame(rows, columns=["at", "user_id", "experiment", "arm", "purchases"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["request_id"] = [f"x{i}" for i in range(len(frame))]
    frame["clicks"] = frame["purchases"] * 2
    frame["model"], frame["version"], frame["revenue"] = "recommender", "1", 0.0
    return frame


def write_outcomes(settings, frame):
    for day, rows in frame.groupby(frame["at"].dt.strftime("%Y-%m-%d")):
        table = pa.Table.from_pandas(
            rows.reindex(columns=SCHEMAS["recommender"].names),
            schema=SCHEMAS["recommender"],
            preserve_index=False,
        )
        write_parquet_atomic(table, outcome_dir(settings, "recommender", day) / "part.parquet")


def test_a_strong_effect_is_promoted_and_reported(settings):
    # the plan is this experiment's 300 shoppers: by the last look the test has spent its alpha
    plan = settings.experiments.model_copy(update={"expected_units": {"recommender": 300}})
    settings = settings.model_copy(update={"experiments": plan})
    start = datetime(2026, 5, 1, 6, tzinfo=UTC)
    write_outcomes(settings, exposures("e7", start))
    experiment = {
        "id": "e7", "model": "recommender", "control": "blue", "treatment": "green",
        "share": 0.5, "metric": "purchases", "control_version": "1", "treatment_version": "2",
        "guardrail_metrics": ["clicks"], "started_at": start.timestamp(), "status": "ended",
        "ended_at": (start + timedelta(days=3)).timestamp(), "ended_reason": "test",
    }  # fmt: skip

    analysis = analyse_experiment(settings, experiment)

    assert analysis.decision.action == "promote", analysis.decision.reason
    assert [t.isoformat() for t in analysis.looks] == [
        "2026-05-02T00:00:00+00:00", "2026-05-03T00:00:00+00:00",
        "2026-05-04T00:00:00+00:00", "2026-05-04T06:00:00+00:00",
    ]  # fmt: skip
    assert analysis.units["control"] + analysis.units["treatment"] == 300
    assert analysis.analysis["lower"].iloc[-1] > 0 and "clicks" in analysis.guardrails
    rows = status_table(analysis)
    assert len(rows) == len(analysis.analysis) and rows[-1]["significant"] == "yes"

    assert analysis.report == report_path(settings, "e7")
    page = analysis.report.read_text()
    assert analysis.decision.reason.split(":")[0] in page and "<img" in page
    assert rows[-1]["interval"] in page  # the CLI's table is the report's

    from mlflow import MlflowClient

    client = MlflowClient()
    run = client.get_run(analysis.mlflow_run_id)
    assert run.data.tags["aisle.decision"] == "promote"
    history = client.get_metric_history(run.info.run_id, "effect")
    assert sorted(m.step for m in history) == analysis.analysis["look"].tolist()
    assert [a.path for a in client.list_artifacts(run.info.run_id, "report")] == ["report/e7.html"]


def test_an_experiment_on_revenue_refuses_answers_whose_revenue_is_unknown(settings):
    start = datetime(2026, 6, 1, 6, tzinfo=UTC)
    frame = exposures("e9", start)
    frame.loc[frame["experiment"].notna(), "revenue"] = 5.0
    frame.loc[frame.index[-1], "revenue"] = np.nan  # an item bought without a price
    write_outcomes(settings, frame)
    experiment = {
        "id": "e9", "model": "recommender", "control": "blue", "treatment": "green",
        "share": 0.5, "metric": "revenue", "control_version": "1", "treatment_version": "2",
        "guardrail_metrics": [], "started_at": start.timestamp(), "status": "ended",
        "ended_at": (start + timedelta(days=3)).timestamp(), "ended_reason": "test",
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"1 answer\(s\) have no revenue .*judge it on purchases"):
        analyse_experiment(settings, experiment, write=False)
    # the same exposures judged on purchases are analysed
    on_purchases = analyse_experiment(settings, {**experiment, "metric": "purchases"}, write=False)
    assert on_purchases.units["control"] + on_purchases.units["treatment"] == 300


def shelves(experiment_id, start, cost=1.0, n_items=40, seed=2):
    """A pricing experiment's quotes: 40 items x 3 stores, two quotes a day for three days; the
    treatment's quotes earn 3 units of profit more than the control's (a known, strong effect)."""
    rng = np.random.default_rng(seed)
    rows = []
    for item in range(n_items):
        for store in ("s1", "s2", "s3"):
            shelf = f"i{item}|{store}"
            arm = arm_of(experiment_id, shelf, 0.5)
            for hours in rng.uniform(0, 72, 6):
                units = rng.poisson(4)
                price = 2.0 + (0.75 if arm == "treatment" else 0.0)
                rows.append((start + timedelta(hours=float(hours)), f"i{item}", store, arm,
                             price, units))  # fmt: skip
    frame = pd.DataFrame(rows, columns=["at", "item_id", "store_id", "arm", "price", "units"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["cost"], frame["experiment"], frame["model"] = cost, experiment_id, "pricing"
    frame["request_id"] = [f"q{i}" for i in range(len(frame))]
    frame["revenue"] = frame["price"] * frame["units"]
    frame["profit"] = (frame["price"] - frame["cost"]) * frame["units"]
    return frame


def write_quotes(settings, frame):
    for day, rows in frame.groupby(frame["at"].dt.strftime("%Y-%m-%d")):
        schema = SCHEMAS["pricing"]
        table = pa.Table.from_pandas(rows.reindex(columns=schema.names), schema=schema,
                                     preserve_index=False)  # fmt: skip
        write_parquet_atomic(table, outcome_dir(settings, "pricing", day) / "part.parquet")


def test_a_pricing_experiment_counts_shelves_and_needs_known_costs(settings):
    start = datetime(2026, 6, 1, tzinfo=UTC)
    experiment = {"id": "p7", "model": "pricing", "share": 0.5, "metric": "profit",
                  "started_at": start.timestamp(), "status": "running"}  # fmt: skip
    # a shelf counts once its first week is over (AISLE_EXPERIMENTS__UNIT_WINDOW_HOURS)
    looks = [pd.Timestamp(start + timedelta(days=d)) for d in (1, 8, 9)]
    write_quotes(settings, shelves("p7", start))

    analysis = analyse_experiment(settings, experiment, looks, write=False)

    assert analysis.units["control"] + analysis.units["treatment"] == 120  # shelves, not quotes
    assert analysis.exposures["control"] + analysis.exposures["treatment"] == 720
    assert analysis.decision.action == "promote" and analysis.report is None
    assert analysis.guardrails == {}  # pricing has none by default

    write_quotes(settings, shelves("p8", start + timedelta(days=10), cost=np.nan))
    unknown = {**experiment, "id": "p8", "started_at": (start + timedelta(days=10)).timestamp()}
    with pytest.raises(ValueError, match="have no profit"):
        analyse_experiment(settings, unknown, [looks[-1] + timedelta(days=10)], write=False)
