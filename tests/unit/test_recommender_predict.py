"""The recommender's inference function: personal results with reasons, cold start, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from training.recommender.model import ItemAutoencoder, RecommenderConfig
from training.recommender.predict import BadRequest, Recommender, Request

ITEMS = [f"i{n}" for n in range(8)]
CATEGORIES = {f"i{n}": ("Drama" if n < 4 else "Comedy") for n in range(8)}


@pytest.fixture(scope="module")
def recommender() -> Recommender:
    # two taste groups: users of items 0-3 and users of items 4-7; item 0 and 4 most popular
    rng = np.random.default_rng(0)
    rows = []
    for user in range(60):
        group = range(4) if user % 2 == 0 else range(4, 8)
        picks = {group[0]} | set(rng.choice(list(group), size=2, replace=True).tolist())
        rows.append([1.0 if i in picks else 0.0 for i in range(8)])
    matrix = torch.tensor(rows)
    config = RecommenderConfig(l2=1.0, spectral_rank=2, spectral_weight=0.2)
    model = ItemAutoencoder(8, config).fit_closed_form(matrix)
    popularity = matrix.sum(0).numpy()
    return Recommender(model, ITEMS, popularity, CATEGORIES, {"version": "test"})


def test_a_known_history_gets_personal_items_with_reasons(recommender):
    got = recommender.recommend(["i1", "i2"], k=2)
    assert not got.fallback
    assert len(got.items) == 2
    assert set(got.item_ids) <= {"i0", "i3"}  # the same taste group, history excluded
    for item in got.items:
        assert item.because_of in {"i1", "i2"}
        assert item.reason == f"because you viewed {item.because_of}"
    assert got.items[0].score >= got.items[1].score


@pytest.mark.parametrize(
    ("history", "reason"),
    [(None, "no history yet"), ([], "no history yet"), (["nobody-knows"], "no known item")],
)
def test_cold_start_falls_back_to_popularity_and_says_so(recommender, history, reason):
    got = recommender.recommend(history, k=3)
    assert got.fallback and got.fallback_reason.startswith(reason)
    counts = recommender.popularity.numpy()
    expected = [ITEMS[i] for i in np.argsort(-counts, kind="stable")[:3]]
    assert sorted(got.item_ids) == sorted(expected)
    assert all(i.reason == "popular with shoppers" for i in got.items)


def test_unknown_history_items_are_ignored_with_a_note(recommender):
    got = recommender.recommend(["i5", "gone"], k=2)
    assert not got.fallback
    assert any("unknown" in n for n in got.notes)
    assert "i5" not in got.item_ids


def test_k_beyond_the_catalogue_returns_everything_left(recommender):
    got = recommender.recommend(["i0"], k=100)
    assert sorted(got.item_ids) == sorted(set(ITEMS) - {"i0"})
    assert len(set(got.item_ids)) == len(got.item_ids)
    assert any("capped" in n for n in got.notes)


def test_the_category_filter_and_the_current_item(recommender):
    got = recommender.recommend(["i0"], k=5, current_item="i1", category="Comedy")
    assert got.item_ids and all(CATEGORIES[i] == "Comedy" for i in got.item_ids)
    assert "i1" not in got.item_ids
    assert len(got.items) == 4


def test_an_unknown_category_is_an_empty_answer_with_a_note(recommender):
    got = recommender.recommend(["i0"], k=5, category="Western")
    assert got.items == []
    assert any("Western" in n for n in got.notes)


@pytest.mark.parametrize(
    "request_",
    [
        Request(["i0"], k=0),
        Request(["i0"], k=-3),
        Request(["i0"], k=True),
        Request("i0", k=3),
        Request([1, 2], k=3),
        Request(["i0"], k=3, category=7),
    ],
)
def test_malformed_requests_are_bad_requests(recommender, request_):
    with pytest.raises(BadRequest):
        recommender.recommend_batch([request_])


def test_a_batch_answers_like_single_requests(recommender):
    requests = [Request(["i1"], 3), Request(None, 2), Request(["i6", "i7"], 3, category="Comedy")]
    batch = recommender.recommend_batch(requests)
    single = [recommender.recommend(r.history, r.k, r.current_item, r.category) for r in requests]
    assert [b.item_ids for b in batch] == [s.item_ids for s in single]


def test_the_checkpoint_round_trips(recommender, tmp_path):
    path = recommender.save(tmp_path / "model.pt")
    loaded = Recommender.load(path)
    assert loaded.item_ids == ITEMS
    assert loaded.metadata == {"version": "test"}
    assert loaded.model.config == recommender.model.config
    history = sp.csr_matrix(np.eye(8, dtype=np.float32))
    dense = torch.as_tensor(history.toarray())
    assert torch.equal(loaded.model(dense), recommender.model(dense))
    assert loaded.recommend(["i2"], 3).item_ids == recommender.recommend(["i2"], 3).item_ids


def test_a_foreign_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not an Aisle recommender checkpoint"):
        Recommender.load(path)
