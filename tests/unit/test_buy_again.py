"""Buy again: the setting, the one definition of what a history may get back, and the path end to
end on a small simulated grocery shop (train with the setting on, the gate's checks, the
answer a shopper gets)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from training.recommender.buy_again import (
    MOST_BOUGHT,
    REASON,
    BuyAgain,
    RepeatScores,
    masked,
    propensity,
)

CATEGORIES = {"milk": "dairy", "eggs": "dairy", "bread": "bakery", "jam": "pantry"}


@pytest.mark.parametrize(
    ("setting", "on", "rebuyable"),
    [
        ("off", False, set()),
        (None, False, set()),
        ("all", True, {"milk", "eggs", "bread", "jam"}),
        ("ALL", True, {"milk", "eggs", "bread", "jam"}),
        ("dairy, bakery", True, {"milk", "eggs", "bread"}),
    ],
)
def test_the_setting_says_which_history_items_may_come_back(setting, on, rebuyable):
    policy = BuyAgain.parse(setting)
    assert policy.on is on
    assert {i for i in CATEGORIES if policy.rebuyable(i, CATEGORIES)} == rebuyable
    assert BuyAgain.parse(policy.setting) == policy  # what a checkpoint records reads back
    # targets: new items always, history items only where allowed, first-touch order
    touched = ["jam", "milk", "cheese", "milk"]
    expected = [i for i in ("jam", "milk", "cheese") if i == "cheese" or i in rebuyable]
    assert policy.targets(touched, ["jam", "milk"], CATEGORIES) == expected


def test_a_setting_of_no_category_is_refused_with_what_to_say():
    with pytest.raises(ValueError, match="off, all, or categories"):
        BuyAgain.parse(" , ")


def test_repeat_scores_replace_only_rebuyable_history_entries():
    # two users over four items; ranks hold recency rank + 1
    ranks = sp.csr_matrix(np.array([[1, 2, 0, 0], [0, 0, 1, 0]], dtype=np.float32))
    rebuyable = np.array([True, False, True, True])
    repeat = RepeatScores(weight=2.0, decay=1.0, propensity=np.full(4, 0.5, np.float32))
    scores = repeat.apply(np.zeros((2, 4), np.float32), ranks, rebuyable)
    # item 0 at rank 0: 2 * 0.5 * 1; item 1 is not rebuyable; user 1's item 2 at rank 0
    np.testing.assert_allclose(scores, [[1.0, 0, 0, 0], [0, 0, 1.0, 0]])
    assert masked(ranks, rebuyable).toarray().tolist() == [[0, 2, 0, 0], [0, 0, 0, 0]]
    # blend adds the item model's own score; serving's per-request `of` gives the same
    blended = RepeatScores(2.0, 1.0, np.full(4, 0.5, np.float32), blend=0.5)
    own = np.array([[4.0, 3, 2, 1], [1, 2, 3, 4]], np.float32)
    out = blended.apply(own, ranks, rebuyable)
    assert out[0, 0] == pytest.approx(1.0 + 0.5 * 4) == blended.of(0, 0, 4.0)
    assert out[0, 1] == 3.0  # not rebuyable: the model's score, masked by the evaluation
    again = RepeatScores.from_dict(blended.to_dict())
    assert (again.weight, again.decay, again.blend) == (2.0, 1.0, 0.5)
    # propensity: item 0 held by 1 user and rebought by them, shrunk towards the overall 1/3
    targets = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 0, 0, 0]], dtype=np.float32))
    p = propensity(ranks, targets)
    overall = 1 / 3
    assert p[0] == pytest.approx((1 + 10 * overall) / (1 + 10))
    assert p[2] == pytest.approx((0 + 10 * overall) / (1 + 10))


def test_grocery_mode_makes_shoppers_buy_their_staples_again():
    from features.sources.simulator import SimulatorConfig, simulate

    def rebought_share(staples: int) -> float:
        config = SimulatorConfig(
            events=20_000, users=300, items=100, categories=5, days=28, staples_per_user=staples
        )
        bought = simulate(config).interactions.query("event_type == 'purchase'")
        return float((bought.groupby(["user_id", "item_id"]).size() > 1).mean())

    # staples take 40 % of the views and convert 4x as often: far more pairs bought twice+
    assert rebought_share(5) > 2 * rebought_share(0)


# -- end to end --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grocery(tmp_path_factory):
    """A protocol-B training set of a small grocery shop (staples bought again and again), from
    its events in memory (dataset.frame_from_events)."""
    from features.sources.simulator import SimulatorConfig, simulate
    from training.recommender.dataset import frame_from_events
    from training.training_sets import Windows, write_training_set

    config = SimulatorConfig(
        events=40_000, users=600, items=150, categories=8, days=42, staples_per_user=5, seed=3
    )
    shop = simulate(config)
    events = shop.interactions[["user_id", "item_id", "timestamp", "event_type"]]
    end = pd.Timestamp(config.start, tz="UTC") + timedelta(days=config.days)
    windows = Windows.days_before(end.to_pydatetime(), 14, 14)
    frame = frame_from_events(events, windows)
    categories = dict(zip(shop.items.item_id, shop.items.category, strict=True))
    metadata = {
        "dataset": "grocery",
        "feature_service": "recommender_history_v1",
        "windows": windows.to_dict(),
        "categories": categories,
    }
    path = tmp_path_factory.mktemp("grocery") / "training_set.parquet"
    return write_training_set(frame, metadata, path), frame


def test_buy_again_end_to_end_on_a_grocery_shop(grocery, tmp_path):
    from core.settings import get_settings
    from serving.sandbox import register
    from training.recommender.gate import gate_step
    from training.recommender.pipeline import train_step
    from training.recommender.predict import load_checkpoint

    path, frame = grocery
    assert frame.repeat_item_ids.map(len).sum() > 0  # shoppers rebuy in the test window
    settings = get_settings(data_dir=tmp_path / "data", recommender_buy_again="all")
    trained = train_step(path, {"epochs": 0}, settings)
    model = load_checkpoint(trained["checkpoint"], device="cpu")
    assert model.buy_again == BuyAgain(None)  # the checkpoint keeps its setting
    references = model.metadata["references"]
    # rebuys are most of what a grocery shopper does next: the model must use them
    assert trained["test"]["ndcg@10"] > references["popularity"]["ndcg@10"]

    # a shopper's answer holds what they bought before, with the reason, ids in their own fields
    test = frame[frame.role == "test"]
    user = test.loc[test.repeat_item_ids.map(len).idxmax()]
    answer = model.recommend(list(user.history_item_ids), k=10)
    again = [i for i in answer.items if i.reason == REASON]
    assert again and all(i.item_id in user.history_item_ids for i in again)
    assert all(i.because_of == i.item_id for i in again)

    version = register(settings, "recommender", model)
    decision = gate_step(path, version, settings)
    assert decision["behaviour"]["no masked history item recommended"]
    assert all(decision["behaviour"].values()), decision["behaviour"]
    assert MOST_BOUGHT in decision["metrics"]


def test_with_the_setting_off_history_items_stay_masked(grocery):
    from training.recommender.gate import behavioural_tests
    from training.recommender.model import ItemAutoencoder, RecommenderConfig
    from training.recommender.predict import Recommender

    _, frame = grocery
    fit = frame[frame.role == "fit"]
    vocabulary = sorted({i for h in fit.history_item_ids for i in h})
    index = {item: n for n, item in enumerate(vocabulary)}
    import torch

    matrix = torch.zeros((len(fit), len(vocabulary)))
    for row, history in enumerate(fit.history_item_ids):
        matrix[row, [index[i] for i in history]] = 1.0
    model = ItemAutoencoder(len(vocabulary), RecommenderConfig(epochs=0)).fit_closed_form(matrix)
    off = Recommender(model, vocabulary, matrix.sum(0).numpy())
    histories = [list(h) for h in frame[frame.role == "test"].history_item_ids[:50]]
    assert behavioural_tests(off, histories)["no seen items recommended"]
    answer = off.recommend(histories[0], k=10)
    assert not set(answer.item_ids) & set(histories[0])
    assert all(i.reason != REASON for i in answer.items)


def test_the_performance_check_counts_rebuys_as_the_model_was_trained_to():
    """monitoring.performance scores a champion on the targets its own setting defines: a
    shopper who only bought again is a unit for a buy-again model, and not for another."""
    import torch

    from monitoring.performance import recommender_units
    from training.recommender.model import ItemAutoencoder, RecommenderConfig
    from training.recommender.predict import Recommender

    items = list(CATEGORIES)
    rows = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]])
    model = ItemAutoencoder(4, RecommenderConfig(l2=1.0, spectral_rank=2)).fit_closed_form(rows)
    start = pd.Timestamp("2024-03-01", tz="UTC")
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u1"],
            "item_id": ["milk", "milk"],
            "timestamp": [start - timedelta(days=1), start + timedelta(hours=1)],
        }
    )
    end = start + timedelta(days=1)
    off = Recommender(model, items, rows.sum(0).numpy(), CATEGORIES)
    assert recommender_units(off, events, start, end, history_days=7).empty

    on = Recommender(model, items, rows.sum(0).numpy(), CATEGORIES).use_buy_again(
        BuyAgain.parse("dairy"), RepeatScores(100.0, 0.0, np.ones(4, np.float32))
    )
    units = recommender_units(on, events, start, end, history_days=7)
    assert units.user_id.tolist() == ["u1"]
    assert units.units.tolist() == [1.0]  # milk, rebought, ranked first
    assert on.recommend(["milk"], k=1).items[0].reason == REASON
