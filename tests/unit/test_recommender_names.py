"""Answers a shopper can read: reasons name the history item ("because you viewed Star Wars
(1977)"), each item carries its name, the ids stay in their own fields, an item without a name
falls back to its id; for both served forms, through their checkpoints, from the items snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import torch

from core.settings import Settings
from features.etl import CURATED_FILE
from features.sources.movielens import _display_names
from serving.schemas import RecommendedItem
from training.recommender.dataset import _item_names
from training.recommender.factors import FactorRecommender
from training.recommender.model import ItemAutoencoder, RecommenderConfig
from training.recommender.predict import Recommender, load_checkpoint
from training.training_sets import Windows

ITEMS = [f"i{n}" for n in range(6)]
NAMES = {"i0": "Star Wars (1977)", "i1": "Return of the Jedi (1983)", "i2": "Fargo (1996)",
         "i3": "Toy Story (1995)", "i4": "Babe (1995)"}  # fmt: skip  # i5 has no name


def taste_groups() -> torch.Tensor:
    """Two groups of shoppers: items 0-2 together, items 3-5 together."""
    rows = [[1.0 if i in group else 0.0 for i in range(6)] for group in [(0, 1, 2), (3, 4, 5)] * 20]
    return torch.tensor(rows)


@pytest.fixture(scope="module")
def dense() -> Recommender:
    matrix = taste_groups()
    model = ItemAutoencoder(6, RecommenderConfig(l2=1.0, spectral_rank=2, spectral_weight=0.2))
    model.fit_closed_form(matrix)
    return Recommender(model, ITEMS, matrix.sum(0).numpy()).with_item_names(NAMES)


@pytest.fixture(scope="module")
def factors() -> FactorRecommender:
    matrix = taste_groups().numpy()
    _, _, vt = np.linalg.svd(matrix, full_matrices=False)
    side = vt[:2].T.copy()  # items x rank: the two groups
    model = FactorRecommender(side, side, ITEMS, matrix.sum(0))
    return model.with_item_names(NAMES)


@pytest.mark.parametrize("form", ["dense", "factors"])
def test_reasons_name_the_item_and_keep_the_id(form, request, tmp_path):
    model = request.getfixturevalue(form)
    loaded = load_checkpoint(model.save(tmp_path / "checkpoint.pt"), device="cpu")
    for answer in (model.recommend(["i0"], k=2), loaded.recommend(["i0"], k=2)):
        assert not answer.fallback and set(answer.item_ids) == {"i1", "i2"}
        for item in answer.items:
            assert item.because_of == "i0"  # the id, in its own field
            assert item.reason == "because you viewed Star Wars (1977)"
            assert item.name == NAMES[item.item_id]
    assert loaded.item_names == NAMES


@pytest.mark.parametrize("form", ["dense", "factors"])
def test_an_item_without_a_name_is_shown_by_its_id(form, request):
    model = request.getfixturevalue(form)
    answer = model.recommend(["i5"], k=2)
    assert {i.reason for i in answer.items} == {"because you viewed i5"}
    assert {i.name for i in answer.items} == {"Toy Story (1995)", "Babe (1995)"}
    cold = model.recommend([], k=6)  # the popularity list is named too
    assert cold.fallback and {i.name for i in cold.items} == {*NAMES.values(), None}


def test_the_http_answer_carries_name_reason_and_id(dense):
    item = dense.recommend(["i3"], k=1).items[0]
    sent = RecommendedItem(**vars(item)).model_dump()
    assert sent["because_of"] == "i3" and sent["reason"] == "because you viewed Toy Story (1995)"
    assert sent["name"] == NAMES.get(sent["item_id"])  # i4, or i5 that has none


def test_a_checkpoint_without_names_answers_with_ids(dense, tmp_path):
    plain = Recommender(dense.model, ITEMS, dense.popularity.numpy())
    loaded = load_checkpoint(plain.save(tmp_path / "plain.pt"), device="cpu")
    item = loaded.recommend(["i0"], k=1).items[0]
    assert (item.reason, item.name) == ("because you viewed i0", None)


def test_names_come_from_the_items_snapshot_known_at_the_cut(tmp_path):
    settings = Settings(data_dir=tmp_path)
    for day, names in [("2024-03-01", ["Old", "Fargo (1996)"]), ("2024-03-20", ["New", "x"])]:
        folder = settings.curated_dir / "shop" / "items" / f"date={day}"
        folder.mkdir(parents=True)
        frame = pd.DataFrame({"item_id": ["a", "b", "c"], "name": [*names, "  "]})
        frame.to_parquet(folder / CURATED_FILE)
    at = datetime(2024, 3, 10, tzinfo=UTC)
    windows = Windows(train_end=at.replace(day=3), valid_end=at, end=at.replace(day=11))
    assert _item_names(settings, "shop", windows) == {"a": "Old", "b": "Fargo (1996)"}


def test_movielens_names_carry_the_year_as_its_own_u_item_does():
    titles = pd.Series(["Star Wars", "unkonwn", "Fargo"])
    years = pd.Series(["1977", "unkonwn", ""])
    assert _display_names(titles, years).tolist() == ["Star Wars (1977)", None, "Fargo"]
