"""The pricing model against the simulator's truth, through the product's whole path: sales
ingested, pricing features built, a pricing_v1 training set from Feast, the model trained, and
its elasticities and optimised prices compared with the true constant elasticities and the
oracle's prices (cost x e / (1 + e))."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from core.settings import get_settings

START, DAYS = date(2024, 1, 1), 84  # twelve whole weeks
SHOP = {"events": 5_000, "users": 300, "items": 40, "categories": 5, "stores": 3, "days": DAYS}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from features.ingest import ingest, ingest_attributes
    from features.pipeline import run_features
    from features.sources.prepare import prepare
    from training.pricing.dataset import PricingData, build_training_set
    from training.pricing.model import PricingConfig
    from training.pricing.train import train_pricing
    from training.training_sets import Windows

    settings = get_settings(
        data_dir=tmp_path_factory.mktemp("pricing_sim") / "data",
        sales_source="simulator",
        simulator=SHOP,
    )
    end = START + timedelta(days=DAYS)
    windows = Windows.weeks_before(datetime.combine(end, datetime.min.time(), UTC), 2, 2)
    prepare(settings, "simulator")
    ingest_attributes("sales", START - timedelta(days=1), START, settings)
    ingest("sales", START, end, settings)
    run_features("sales", START, end, settings)
    data = PricingData.load(build_training_set(settings, "simulator", windows))
    # Per-item context weights: the default search takes three times as long here and, on
    # these 2 valid weeks, chooses reference (a)'s lean inputs (11.2 % and 95.0 %: it meets
    # the targets by a hair; README, pricing)
    config = PricingConfig(structures=("per-item",), members=3)
    model = train_pricing(data.fit, data.valid, config, device="cpu").model
    truth = pd.read_parquet(settings.sources_dir / "simulator" / "truth" / "items.parquet")
    return model, data, truth


@pytest.mark.integration
@pytest.mark.slow
def test_elasticities_and_profit_meet_the_targets(trained):
    """The issue's targets: median elasticity error <= 15 %, profit >= 95 % of the oracle's.
    The benchmark (300 items, 26 weeks) measures 8.3 % and 97.5 %; this shop is smaller (40
    items, 12 weeks, 3 stores), so the margin is thinner but the targets are the same: measured
    10.4 % and 97.1 % (before the shared context weights were penalised per item, 13.9 % and
    93.2 %: `DemandModel.penalty`)."""
    from training.pricing.evaluate import simulator_scores

    model, data, truth = trained
    scores = simulator_scores(model, data.test, truth)
    assert scores["items"] == 40 and scores["quotes"] == 40 * 3
    assert scores["elasticity_median_abs_pct_error"] <= 15, scores
    assert scores["profit_vs_oracle_pct"] >= 95, scores


@pytest.mark.integration
@pytest.mark.slow
def test_every_own_price_elasticity_is_negative(trained):
    from training.pricing.evaluate import elasticity_table

    model, data, _ = trained
    pairs = elasticity_table(model, pd.concat([data.fit, data.valid, data.test]))
    assert len(pairs) == 40 * 3
    assert (pairs.elasticity < 0).all()
