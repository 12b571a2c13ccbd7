"""The response model: the simulator's world answering a model's answers, with exact expectations
that the draws agree with, and experiment streams whose truth is known."""

from __future__ import annotations

from datetime import date
from functools import cache

import numpy as np
import pandas as pd
import pytest

from features.sources.simulator import (
    SESSION_VIEWS,
    DriftConfig,
    ResponseModel,
    SimulatedShop,
    SimulatorConfig,
    examination,
    simulate,
    simulate_exposures,
)

SMALL = SimulatorConfig(
    seed=5, events=5_000, users=500, items=200, categories=8, stores=3, start=date(2024, 1, 1),
    days=28,
)  # fmt: skip
WEEK = 1
RECOMMENDATION = ("clicked", "purchased", "revenue")
Z = 4  # standard errors: a seeded test, and a miss this far out has odds of about 1 in 16 000


@cache
def shop() -> SimulatedShop:
    return simulate(SMALL)


@cache
def model(config: SimulatorConfig = SMALL) -> ResponseModel:
    return ResponseModel.from_config(config)


def within(drawn: np.ndarray, expected: np.ndarray) -> None:
    """The mean of the draws is the mean of the expectations, within Z standard errors."""
    se = drawn.std(ddof=1) / np.sqrt(len(drawn))
    assert abs(drawn.mean() - expected.mean()) <= Z * se, (drawn.mean(), expected.mean(), se)


def test_the_same_seed_gives_the_world_simulate_uses() -> None:
    m, truth = model(), shop().truth
    np.testing.assert_array_equal(m.item_ids(), truth["items"].item_id)
    np.testing.assert_array_equal(m.world.elasticity, truth["items"].elasticity)
    np.testing.assert_array_equal(m.world.popularity, truth["items"].popularity)
    np.testing.assert_array_equal(m.store_ids()[m.world.home], truth["users"].home_store)
    sales = shop().sales
    week = ((sales.week_start - pd.Timestamp(m.world.week_start(0))).dt.days // 7).to_numpy()
    items, stores = m.item_index(sales.item_id), m.store_index(sales.store_id)
    for w in np.unique(week):
        rows = week == w
        np.testing.assert_array_equal(
            m.shelf_prices(items[rows], stores[rows], int(w)), sales.price[rows].to_numpy()
        )


def test_ids_map_to_indices_and_unknown_items_are_never_viewed() -> None:
    m = model()
    assert m.item_index(["i0002", "i9999", "x"]).tolist() == [1, -1, -1]
    assert m.user_index(["u00001", "u99999"]).tolist() == [0, -1]
    users = m.visitors(2_000, np.random.default_rng(0))
    shown = m.affinity_lists(users, 5, WEEK)
    shown[:, [1, 3]] = m.item_index(["i9999", "nope"])
    assert (m.view_probability(users, shown, WEEK)[:, [1, 3]] == 0).all()
    drawn = m.respond_to_recommendations(users, shown, WEEK, np.random.default_rng(1))
    assert not drawn["viewed"][:, [1, 3]].any()
    assert np.isnan(drawn["price"][:, [1, 3]]).all()


def test_probabilities_lie_in_the_unit_interval() -> None:
    m, rng = model(), np.random.default_rng(2)
    users = m.visitors(1_000, rng)
    shown = rng.integers(-1, len(m.item_ids()), (1_000, 10))
    view = m.view_probability(users, shown, WEEK)
    assert ((view >= 0) & (view <= 1)).all() and view.max() > 0
    items = rng.integers(0, len(m.item_ids()), 1_000)
    for scale in (0.01, 0.5, 1.0, 3.0):  # deep discounts push the rate past 1: clipped
        cart = m.cart_probability(items, scale * m.world.base_price[items])
        assert ((cart >= 0) & (cart <= 1)).all()
    assert m.cart_probability(np.array([0]), m.world.base_price[:1]) == pytest.approx(0.12)
    assert examination(3) == pytest.approx([1, 1 / np.log2(3), 0.5])


def test_recommendation_expectations_match_the_draws() -> None:
    m, rng = model(), np.random.default_rng(3)
    users = m.visitors(20_000, rng)
    shown = m.affinity_lists(users, 10, WEEK)
    expected = m.recommendation_expectations(users, shown, WEEK)
    drawn = m.respond_to_recommendations(users, shown, WEEK, rng)
    within(drawn["viewed"].any(axis=1), expected["click"])
    within(drawn["viewed"].sum(axis=1), expected["views"])
    within(drawn["carted"].sum(axis=1), expected["carts"])
    within(drawn["bought"].sum(axis=1), expected["purchases"])
    within(drawn["quantity"].sum(axis=1), expected["units"])
    revenue = np.where(drawn["bought"], drawn["quantity"] * drawn["price"], 0).sum(axis=1)
    within(revenue, expected["revenue"])


def test_sales_expectations_match_the_draws() -> None:
    m, rng = model(), np.random.default_rng(4)
    items = rng.integers(0, len(m.item_ids()), 20_000)
    stores = rng.integers(0, SMALL.stores, 20_000)
    prices = m.shelf_prices(items, stores, WEEK)
    expected = m.expected_units(items, stores, prices, WEEK, days=3)
    within(m.sell(items, stores, prices, WEEK, rng, days=3), expected)


def test_the_affinity_recommender_beats_popularity() -> None:
    m = model()
    users = m.visitors(5_000, np.random.default_rng(5))
    popular = m.recommendation_expectations(users, m.popularity_lists(5_000, 10, WEEK), WEEK)
    affine = m.recommendation_expectations(users, m.affinity_lists(users, 10, WEEK), WEEK)
    assert affine["click"].mean() > 2 * popular["click"].mean()
    assert affine["purchases"].mean() > 2 * popular["purchases"].mean()
    assert 0.2 < affine["click"].mean() < 0.8  # a few tens of percent click through


def test_oracle_prices_beat_shelf_prices_on_every_shelf() -> None:
    m = model()
    items = np.repeat(np.arange(SMALL.items), SMALL.stores)
    stores = np.tile(np.arange(SMALL.stores), SMALL.items)
    shelf = m.price_expectations(items, stores, m.shelf_prices(items, stores, WEEK), WEEK)
    oracle = m.price_expectations(items, stores, m.oracle_prices(items), WEEK)
    assert (oracle["profit"] >= shelf["profit"] - 1e-9).all()
    assert oracle["profit"].sum() > 1.05 * shelf["profit"].sum()


def test_new_items_are_neither_viewed_nor_sold_before_their_week() -> None:
    launch = date(2024, 1, 15)  # a Monday: week 2 of the world
    drift = DriftConfig(new_items_at=launch, new_items=20, taste_shift_at=launch)
    m = model(SMALL.model_copy(update={"drift": drift}))
    new = np.arange(SMALL.items, SMALL.items + 20)
    users = m.visitors(100, np.random.default_rng(6))
    shown = np.broadcast_to(new[:10], (100, 10))
    assert (m.view_probability(users, shown, 1) == 0).all()
    assert (m.view_probability(users, shown, 2) > 0).any()
    assert (m.expected_units(new, new % 3, m.shelf_prices(new, new % 3, 1), 1) == 0).all()
    assert not np.isin(m.affinity_lists(users, 10, 1), new).any()
    # Before and after the launch and the taste shift, a visitor's browsing shares sum to 1.
    catalogue = np.arange(len(m.item_ids()))
    for week in (1, 2):
        share = -np.log1p(-m.attractiveness(users[:, None], catalogue, week)) / SESSION_VIEWS
        assert share.sum(axis=1) == pytest.approx(np.ones(len(users)))


def test_a_week_outside_the_world_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the world's weeks"):
        model().recommendation_expectations(np.array([0]), np.array([[0]]), 99)


@pytest.mark.parametrize(
    ("kind", "control", "treatment", "metrics", "better", "share"),
    [
        ("recommendations", "popularity", "affinity", RECOMMENDATION, RECOMMENDATION, 0.5),
        # The oracle maximises profit; its units and revenue may go either way.
        ("prices", "shelf_price", "oracle_price", ("units", "revenue", "profit"), ("profit",), 0.3),
    ],
)
def test_exposures_keep_each_unit_in_one_arm_with_a_known_effect(
    kind: str,
    control: str,
    treatment: str,
    metrics: tuple[str, ...],
    better: tuple[str, ...],
    share: float,
) -> None:
    streams = simulate_exposures(
        model(), {"control": control, "treatment": treatment}, days=8, visitors_per_day=300,
        treatment_share=share, seed=9, kind=kind, k=5, pre_days=3,
    )  # fmt: skip
    outcomes, truth, pre = streams
    assert outcomes.columns[:3].tolist() == ["unit", "arm", "at"]
    assert set(metrics) <= set(outcomes.columns)
    assert outcomes.groupby("unit").arm.nunique().max() == 1
    at = outcomes["at"]  # not outcomes.at, pandas' own indexer
    assert str(at.dt.tz) == "UTC" and at.is_monotonic_increasing
    start = pd.Timestamp(model().world.week_start(0), tz="UTC")
    assert at.min() >= start and at.max() < start + pd.Timedelta(days=8)

    assert truth.unit.is_unique and set(truth.unit) == set(outcomes.unit)
    arms = outcomes.drop_duplicates("unit").set_index("unit").arm
    assert (truth.set_index("unit").arm == arms[truth.unit]).all()
    n = len(truth)
    share_se = np.sqrt(share * (1 - share) / n)
    assert (truth.arm == "treatment").mean() == pytest.approx(share, abs=Z * share_se)
    assert truth.exposures.sum() == len(outcomes)
    for metric in metrics:
        effect = truth[f"{metric}_treatment"] - truth[f"{metric}_control"]
        if metric in better:
            assert effect.mean() > 0
        # The arm's own expectations, summed, are what its draws average to.
        treated = truth.arm == "treatment"
        own = np.where(treated, truth[f"{metric}_treatment"], truth[f"{metric}_control"])
        per_unit = outcomes.groupby("unit")[metric].sum()[truth.unit].to_numpy()
        within(per_unit - own, np.zeros(n))

    assert pre.unit.tolist() == truth.unit.tolist()
    assert pre.columns.tolist() == ["unit", "exposures", *metrics]
    again = simulate_exposures(
        model(), {"control": control, "treatment": treatment}, days=8, visitors_per_day=300,
        treatment_share=share, seed=9, kind=kind, k=5, pre_days=3,
    )  # fmt: skip
    pd.testing.assert_frame_equal(again.outcomes, outcomes)


def test_exposures_refuse_a_policy_of_the_other_kind() -> None:
    with pytest.raises(ValueError, match="no ready recommendations policy"):
        simulate_exposures(
            model(), {"control": "popularity", "treatment": "oracle_price"}, days=1,
            visitors_per_day=10, treatment_share=0.5, seed=0, kind="recommendations",
        )  # fmt: skip
