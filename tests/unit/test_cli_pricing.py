"""`aisle price` and `aisle train pricing`: options map to guardrails, bad or contradictory
options are refused with the field named (before any model or feature is loaded), and a quote
from a tiny in-process model honours its guardrails. The registry and the online store are
replaced by the model and rows built here (the real lookups cost seconds per call)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from aisle.cli import app
from aisle.cli import price as cli_price
from aisle.cli import train as cli_train
from aisle.cli.price import NoOnlineFeatures, Objective, guardrails_from_options, pricing_row
from core.settings import get_settings
from training.pricing.model import PricingConfig
from training.pricing.quoting import GuardrailError, Guardrails, violations
from training.pricing.train import train_pricing

runner = CliRunner()
ITEMS = {"i1": -2.0, "i2": -3.0}  # true elasticities
COST = {"i1": 2.0, "i2": 3.0}
STORES = ("s1", "s2")
WEEKS = 16


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(cli_train.console, "width", 250)  # messages are not wrapped


def invoke(*args: str):
    result = runner.invoke(app, list(args), terminal_width=250)
    return result, " ".join(result.output.split())


# -- options -> Guardrails ----------------------------------------------------------------------
def test_options_map_one_to_one_onto_guardrails():
    g = guardrails_from_options(
        floor=1.5,
        ceiling=9.0,
        max_change_pct=20.0,
        min_margin_pct=25.0,
        endings=[0.99, 0.49],
        objective=Objective.revenue,
    )
    assert g == Guardrails(
        floor=1.5,
        ceiling=9.0,
        max_change_pct=20.0,
        min_margin_pct=25.0,
        price_endings=(0.49, 0.99),
        objective="revenue",
    )
    assert g.ending_cents == (49, 99)


@pytest.mark.parametrize("endings", [None, [], ()])
def test_options_left_out_are_no_guardrail(endings):
    assert guardrails_from_options(endings=endings) == Guardrails()
    assert guardrails_from_options(endings=endings, objective="profit").objective == "profit"


def test_contradictory_or_out_of_range_options_raise_naming_the_field():
    with pytest.raises(GuardrailError) as clash:
        guardrails_from_options(floor=5.0, ceiling=3.0)
    assert clash.value.field == "ceiling"
    with pytest.raises(ValidationError) as out_of_range:
        guardrails_from_options(max_change_pct=150.0)
    assert out_of_range.value.errors()[0]["loc"] == ("max_change_pct",)


# -- the command line: help and errors before any model --------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["price", "--help"], ["--cost", "--floor", "--ceiling", "--max-change-pct",
                               "--min-margin-pct", "--ending", "--step", "--objective",
                               "--current-price",
                               "--alias", "--json", "challenger|champion", "profit|revenue"]),
        (["train", "pricing", "--help"], ["--end", "--members", "--max-iter", "--device",
                                          "challenger"]),
        (["--help"], ["price"]),
    ],
)  # fmt: skip
def test_help_lists_the_options(args, expected):
    result, text = invoke(*args)
    assert result.exit_code == 0, result.output
    for phrase in expected:
        assert phrase in text


@pytest.mark.parametrize(
    ("options", "field", "option"),
    [
        (["--floor", "5", "--ceiling", "3"], "ceiling", "--ceiling"),
        (["--min-margin-pct", "50", "--ceiling", "3"], "min_margin_pct", "--min-margin-pct"),
        (["--max-change-pct", "10", "--current-price", "1"], "max_change_pct",
         "--max-change-pct"),
        (["--floor", "-1"], "floor", "--floor"),
        (["--floor", "nan"], "floor", "--floor"),
        (["--max-change-pct", "0"], "max_change_pct", "--max-change-pct"),
        (["--min-margin-pct", "100"], "min_margin_pct", "--min-margin-pct"),
        (["--ending", "0.99", "--ending", "1.5"], "price_endings", "--ending"),
        (["--ending", "0.999"], "price_endings", "--ending"),
        (["--current-price", "-2"], "current_price", "--current-price"),
    ],
)  # fmt: skip
def test_bad_guardrails_exit_1_naming_the_field_without_a_model(tmp_path, options, field, option):
    result, text = invoke("price", "1", "2", "--cost", "2", *options, "--data-dir", str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "error:" in text and field in text and f"fix {option}" in text
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert not (tmp_path / "mlflow").exists()  # refused before the registry was opened


@pytest.mark.parametrize("cost", ["0", "-1", "inf"])
def test_a_bad_cost_is_refused_by_name(tmp_path, cost):
    result, text = invoke("price", "1", "2", "--cost", cost, "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "cost" in text and "fix --cost" in text


def test_cost_is_required_and_choices_are_checked(tmp_path):
    assert invoke("price", "1", "2", "--data-dir", str(tmp_path))[0].exit_code == 2
    result, text = invoke("price", "1", "2", "--cost", "2", "--objective", "volume")
    assert result.exit_code == 2 and "--objective" in text
    result, text = invoke("price", "1", "2", "--cost", "2", "--alias", "latest")
    assert result.exit_code == 2 and "--alias" in text


def test_no_registered_model_is_a_clear_error(tmp_path, monkeypatch):
    def load(uri: str):  # what mlflow raises without one (a real empty registry takes ~10 s)
        raise RuntimeError("Registered Model with name=pricing not found")

    monkeypatch.setattr("training.pricing.registry.load_pricing", load)
    args = ["price", "1", "2", "--cost", "2", "--alias", "champion", "--data-dir", str(tmp_path)]
    result, text = invoke(*args)
    assert result.exit_code == 1
    assert "no pricing@champion in sqlite:" in text and "name=pricing not found" in text
    assert "aisle train pricing" in text


def test_training_without_data_or_with_a_bad_device_is_a_clear_error(tmp_path):
    args = ["train", "pricing", "--end", "1992-10-08", "--data-dir", str(tmp_path)]
    result, text = invoke(*args)
    assert result.exit_code == 1
    assert "no curated orange_juice sales" in text and "run the ingest first" in text
    result, text = invoke(*args, "--device", "tpu")
    assert result.exit_code == 1 and "--device" in text
    assert invoke(*args, "--members", "0")[0].exit_code == 2


def test_train_pricing_runs_the_dags_steps_and_prints_the_summary(tmp_path, monkeypatch):
    from monitoring import data_checks
    from training import stages
    from training.pricing import dataset, gate, pipeline
    from training.pricing.train import FitProgress

    calls = []

    def build(settings, source, windows):
        calls.append(("build", source, windows.end.date().isoformat()))
        return tmp_path / "training_set.parquet"

    def train(path, config, settings, device=None, on_fit=None):
        calls.append(("train", config, device))
        for n, l2 in enumerate((10.0, 30.0, 100.0), 1):
            on_fit(FitProgress("tune", n, 3, l2, 0.3, 0.52 + n / 100, 0.1))
        for k in range(1, config["members"] + 1):
            on_fit(FitProgress("member", k, config["members"], 10.0, 0.29, None, 0.1))
        return {"run_id": "r1", "checkpoint": "c.pt", "test_rmse": 0.5234, "l2": 10.0,
                "elasticity_share_negative": 0.975}  # fmt: skip

    def register(model, run_id, checkpoint, settings):
        calls.append(("register", model.name, run_id, checkpoint))
        return {"registered_model": "pricing", "version": "7", "run_id": run_id,
                "training_set": "t.parquet"}  # fmt: skip

    def validate(model, path, settings):
        calls.append(("validate", model))
        return {"checks": 12, "html": "validation.html"}

    def decide(training_set, version, settings):
        calls.append(("gate", training_set, version))
        return {"version": version, "passed": True, "reasons": [],
                "metrics": {"challenger": {"rmse": 0.51, "mae": 0.4},
                            "last value": {"rmse": 0.9, "mae": 0.7}},
                "behaviour": {"demand falls with price": True}}  # fmt: skip

    monkeypatch.setattr(dataset, "build_training_set", build)
    monkeypatch.setattr(pipeline, "train_step", train)
    monkeypatch.setattr(stages, "register_step", register)
    monkeypatch.setattr(data_checks, "validate_step", validate)
    monkeypatch.setattr(gate, "gate_step", decide)
    result, text = invoke(
        "train", "pricing", "--end", "1992-10-08", "--members", "2", "--max-iter", "50",
        "--device", "cpu", "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert calls == [
        ("build", "orange_juice", "1992-10-08"),
        ("validate", "pricing"),
        ("train", {"members": 2, "max_iter": 50}, "cpu"),
        ("register", "pricing", "r1", "c.pt"),
        ("gate", "t.parquet", "7"),
    ]
    assert "fit 5/5" in text
    for phrase in ["0.5234", "97.5%", "12 data checks passed", "pricing version 7 (run r1",
                   "demand falls with price", "gate passed: version 7 is @challenger"]:  # fmt: skip
        assert phrase in text


def test_the_progress_bar_counts_every_fit(tmp_path):
    config = PricingConfig()
    settings = get_settings(data_dir=tmp_path)
    unset = {"members": None, "max_iter": None}
    assert cli_train._pricing_fits(unset, settings) == len(config.l2_grid) + config.members
    assert cli_train._pricing_fits({"members": 2}, settings) == len(config.l2_grid) + 2
    # a deployment's setting changes the default, a run's option wins over it
    quick = settings.model_copy(
        update={"training_config": {"pricing": {"members": 1, "l2_grid": [30]}}}
    )
    assert cli_train._pricing_fits(unset, quick) == 1 + 1
    assert cli_train._pricing_fits({"members": 3}, quick) == 1 + 3


# -- quotes from a tiny model ------------------------------------------------------------------
def tiny_sales(seed: int = 0) -> pd.DataFrame:
    """Rows shaped like a pricing_v1 training set: q ~ Poisson(150 * (p / base) ** e)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-04", tz="UTC")
    rows = []
    for w in range(WEEKS):
        for store in STORES:
            prices = {i: round(COST[i] * 1.6 * np.exp(rng.normal(0, 0.1)), 2) for i in ITEMS}
            for item, elasticity in ITEMS.items():
                other = next(i for i in ITEMS if i != item)
                base = COST[item] * 1.6
                rows.append(
                    {
                        "item_id": item,
                        "store_id": store,
                        "event_timestamp": start + pd.Timedelta(weeks=w),
                        "units": float(rng.poisson(150 * (prices[item] / base) ** elasticity)),
                        "price": prices[item],
                        "cost": COST[item],
                        "promo": 0,
                        "feature": 0.0,
                        "competitor_price_mean": prices[other],
                        "competitor_promo_share": 0.0,
                        "competitor_feature_mean": 0.0,
                        "category_item_ids": sorted(ITEMS),
                        "category_prices": [prices[i] for i in sorted(ITEMS)],
                        "store_size": 1.0 if store == "s1" else 1.4,
                    }
                )
    frame = pd.DataFrame(rows).sort_values(["item_id", "store_id", "event_timestamp"])
    group = frame.groupby(["item_id", "store_id"])
    frame["price_lag1"] = group.price.shift(1)
    frame["log_units_lag1"] = np.log1p(group.units.shift(1))
    frame["log_units_mean_4w"] = group.units.transform(
        lambda u: np.log1p(u).shift(1).rolling(4, min_periods=1).mean()
    )
    frame["price_mean_4w"] = group.price.transform(lambda p: p.shift(1).rolling(4, 1).mean())
    frame["weeks_sold_4w"] = group.units.transform(lambda u: u.shift(1).rolling(4, 1).count())
    return frame.sort_values(["event_timestamp", "item_id", "store_id"], ignore_index=True)


@pytest.fixture(scope="module")
def tiny_model():
    sales = tiny_sales()
    cut = sales.event_timestamp.unique()[-4]
    config = PricingConfig(l2_grid=(10.0,), valid_folds=1, members=2, max_iter=30)
    fit, valid = sales[sales.event_timestamp < cut], sales[sales.event_timestamp >= cut]
    model = train_pricing(fit, valid, config, device="cpu").model
    last = sales[sales.event_timestamp == sales.event_timestamp.max()]
    return model, last.drop(columns="units").reset_index(drop=True)


@pytest.fixture
def serving(tiny_model, monkeypatch):
    """`aisle price` with the tiny model as the registered one and its rows as the online store;
    returns the row the online store gives per (item, store), editable by the test."""
    model, last = tiny_model
    rows = {(r.item_id, r.store_id): last.iloc[[n]].reset_index(drop=True)
            for n, r in enumerate(last.itertuples())}  # fmt: skip
    asked: list[str] = []

    def load(uri: str):
        asked.append(uri)
        return model

    def lookup(settings, item_id: str, store_id: str) -> pd.DataFrame:
        if (item_id, store_id) in rows:
            return rows[(item_id, store_id)]
        if item_id == "unknown_to_the_model":  # the store has it, the model was not trained on it
            return rows[("i1", "s1")].assign(item_id=item_id)
        raise NoOnlineFeatures(f"no online pricing features for item_id {item_id!r}")

    monkeypatch.setattr("training.pricing.registry.load_pricing", load)
    monkeypatch.setattr(cli_price, "pricing_row", lookup)
    return rows, asked


def test_price_as_json_holds_every_guardrail(serving, tmp_path):
    rows, asked = serving
    options = ["--floor", "3.0", "--ceiling", "5.0", "--max-change-pct", "30",
               "--min-margin-pct", "20", "--ending", "0.99", "--ending", "0.49"]  # fmt: skip
    result = runner.invoke(
        app,
        ["price", "i1", "s1", "--cost", "2", *options, "--alias", "champion", "--json",
         "--data-dir", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    quote = json.loads(result.output)
    assert asked == ["models:/pricing@champion"]
    shelf = float(rows[("i1", "s1")].price.iloc[0])
    assert quote["item_id"] == "i1" and quote["store_id"] == "s1"
    assert quote["current_price"] == pytest.approx(shelf)  # the online shelf price by default
    assert quote["cost"] == 2.0 and quote["objective"] == "profit"
    guardrails = guardrails_from_options(3.0, 5.0, 30.0, 20.0, [0.99, 0.49])
    assert violations(quote["price"], 2.0, guardrails, shelf) == []
    assert round(quote["price"] % 1, 2) in (0.49, 0.99)
    assert quote["expected_units"] > 0 and quote["elasticity"] < 0
    assert set(quote) >= {"expected_profit", "expected_revenue", "binding", "elasticity_std"}


def test_price_prints_a_table_and_takes_the_current_price_given(serving, tmp_path):
    result, text = invoke(
        "price", "i2", "s2", "--cost", "3", "--current-price", "4.5", "--objective", "revenue",
        "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "models:/pricing@challenger: item i2 in store s2" in text
    table = {
        cells[0]: cells[1]
        for line in result.output.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 2
    }
    assert table["price"].startswith("$") and float(table["price"][1:]) > 0  # money, as read
    assert table["current price"].startswith("$4.50 (")
    assert table["cost"].startswith("$3.00 (margin")
    assert table["maximises"] == "revenue"
    assert float(table["elasticity"].split(" ± ")[0]) < 0
    assert table["features as of"].startswith("2024-04-18")
    assert {"expected units", "expected profit", "expected revenue", "binding guardrails"} <= set(
        table
    )


def test_price_keeps_the_shops_step_and_endings_unless_the_options_set_them(
    serving, tmp_path, monkeypatch
):
    monkeypatch.setenv("AISLE_QUOTING__PRICE_STEP", "0.05")
    monkeypatch.setenv("AISLE_QUOTING__PRICE_ENDINGS", "[0.45, 0.95]")
    common = ["price", "i1", "s1", "--cost", "2", "--json", "--data-dir", str(tmp_path)]
    house = json.loads(runner.invoke(app, common).output)
    assert round(house["price"] % 1, 2) in (0.45, 0.95)
    stepped = json.loads(runner.invoke(app, [*common, "--step", "0.1", "--ending", "0.5"]).output)
    assert round(stepped["price"] % 1, 2) == 0.5
    # a window that holds no .45 or .95: the shop's endings give way to its step, with a note
    narrow = runner.invoke(app, [*common, "--floor", "3.0", "--ceiling", "3.4"])
    quote = json.loads(narrow.output)
    assert 3.0 <= quote["price"] <= 3.4 and round(quote["price"] * 100) % 5 == 0
    assert quote["notes"] == [
        "no allowed price between 3.00 and 3.40 ends in .45 or .95: quoted on the 0.05 step instead"
    ]


@pytest.mark.parametrize(
    ("item", "options", "expected"),
    [
        ("nowhere", [], "no online pricing features for item_id 'nowhere'"),
        ("unknown_to_the_model", [], "item_id: unknown to the model"),
        # the shelf price (about 3.2) allows at most 1.1x it, all below the cost of 9
        ("i1", ["--cost", "9", "--max-change-pct", "10"], "max_change_pct"),
    ],
)
def test_quote_errors_exit_1_naming_the_field(serving, tmp_path, item, options, expected):
    args = ["price", item, "s1", "--cost", "2", *options, "--data-dir", str(tmp_path)]
    result, text = invoke(*args)
    assert result.exit_code == 1, result.output
    assert expected in text and "Traceback" not in result.output


def test_a_row_without_a_price_is_refused_naming_the_field(serving, tmp_path):
    rows, _ = serving
    rows[("i1", "s1")] = rows[("i1", "s1")].assign(price=np.nan)
    result, text = invoke("price", "i1", "s1", "--cost", "2", "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "price" in text
    result, text = invoke(
        "price", "i1", "s1", "--cost", "2", "--current-price", "3", "--data-dir", str(tmp_path)
    )
    assert result.exit_code == 1
    assert "price: must be a positive number" in text and "item_id 'i1'" in text


# -- the online row ---------------------------------------------------------------------------
class FakeLookup:
    """features.online.OnlineLookup over a dict: view -> (keys, features, as_of) per entity."""

    views: ClassVar[dict] = {}

    def __init__(self, settings, view, store=None):
        self.keys, self.table = self.views[view]
        self.view = view

    def __call__(self, entities):
        from features.online import OnlineFeatures

        (entity,) = entities
        key = tuple(entity[k] for k in self.keys)
        found = self.table.get(key)
        names = {"item_price_fv": ["price", "category_item_ids"],
                 "demand_history_fv": ["log_units_lag1"]}[self.view]  # fmt: skip
        values = found[0] if found else dict.fromkeys(names)
        return OnlineFeatures(
            self.keys,
            [entity],
            {n: [values[n]] for n in names},
            [found is not None],
            [found[1] if found else None],
        )


@pytest.fixture
def fake_online(monkeypatch):
    def get_feature_service(name):
        assert name == "pricing_v1"
        return SimpleNamespace(
            feature_view_projections=[SimpleNamespace(name=v) for v in FakeLookup.views]
        )

    week = datetime(2024, 4, 18, tzinfo=UTC)
    FakeLookup.views = {
        "item_price_fv": (
            ["item_id", "store_id"],
            {("i1", "s1"): ({"price": 3.2, "category_item_ids": ["i1", "i2"]}, week)},
        ),
        "demand_history_fv": (["item_id", "store_id"], {}),  # no history yet
    }
    store = SimpleNamespace(get_feature_service=get_feature_service)
    monkeypatch.setattr("features.store.feature_store", lambda settings: store)
    monkeypatch.setattr("features.online.OnlineLookup", FakeLookup)
    return week


def test_the_online_row_is_stamped_at_its_shelf_week_with_nan_for_missing(fake_online, settings):
    row = pricing_row(settings, "i1", "s1")
    assert row.shape[0] == 1
    assert row.event_timestamp.iloc[0] == pd.Timestamp(fake_online)
    assert "UTC" in str(row.event_timestamp.dtype)
    assert row.price.iloc[0] == 3.2 and row.category_item_ids.iloc[0] == ["i1", "i2"]
    assert np.isnan(row.log_units_lag1.iloc[0])  # a history the store lacks reads as missing


def test_a_pair_without_shelf_features_is_no_online_features(fake_online, settings):
    with pytest.raises(NoOnlineFeatures, match="aisle features materialize sales"):
        pricing_row(settings, "i1", "s2")


def test_a_rejected_gate_ends_the_command_with_its_reasons(tmp_path, monkeypatch, capsys):
    import typer

    from core.settings import get_settings
    from training.pricing import gate

    def decide(training_set, version, settings):
        return {"version": version, "passed": False,
                "reasons": ["Metric rmse minimum absolute change check failed"],
                "metrics": {"challenger": {"rmse": 0.6, "mae": 0.4},
                            "champion": {"rmse": 0.5, "mae": 0.4}},
                "behaviour": {"demand falls with price": True,
                              "guardrails held": False}}  # fmt: skip

    monkeypatch.setattr(gate, "gate_step", decide)
    registered = {"registered_model": "pricing", "version": "8", "run_id": "r2",
                  "training_set": "t.parquet"}  # fmt: skip
    with pytest.raises(typer.Exit) as ended:
        cli_train._gate("pricing", registered, get_settings(data_dir=tmp_path))
    assert ended.value.exit_code == 1
    text = capsys.readouterr().out
    for phrase in ["champion", "0.5000", "✗ guardrails held", "rmse minimum absolute change",
                   "gate rejected version 8; the champion stays"]:  # fmt: skip
        assert phrase in text, text
