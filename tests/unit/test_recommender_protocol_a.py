"""Protocol A: RecBole's split rule, RecBole's metrics, and the baselines landing on the
published MovieLens-100k references (3-seed means, within the issue's tolerances)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from training.recommender.baselines import BPRMF, EASE, ItemKNN, Popularity
from training.recommender.evaluate import ranking_metrics
from training.recommender.splits import random_split, recbole_split_sizes


def test_metrics_on_a_ranking_worked_by_hand():
    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0, 0]]))  # item 0 is masked
    targets = sp.csr_matrix(np.array([[0, 0, 1, 0, 1]]))
    got = ranking_metrics(scores, seen, targets, ks=(2,))
    # top 2 after masking: items 1, 2 -> one hit, at rank 2
    assert got["recall@2"] == pytest.approx(0.5)
    assert got["hit@2"] == 1.0
    assert got["mrr@2"] == pytest.approx(0.5)
    assert got["ndcg@2"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_users_without_targets_do_not_count():
    scores = np.array([[2.0, 1.0], [2.0, 1.0]])
    seen = sp.csr_matrix((2, 2))
    targets = sp.csr_matrix(np.array([[1, 0], [0, 0]]))
    assert ranking_metrics(scores, seen, targets, ks=(1,))["hit@1"] == 1.0


@pytest.mark.parametrize(
    ("total", "sizes"),
    [(20, [16, 2, 2]), (10, [8, 1, 1]), (5, [3, 1, 1]), (2, [1, 0, 1]), (1, [1, 0, 0])],
)
def test_split_sizes_follow_recbole(total, sizes):
    assert recbole_split_sizes(total, (0.8, 0.1, 0.1)) == sizes


def test_a_split_partitions_the_log_and_is_seeded():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 2000), rng.integers(0, 50, 2000)
    pairs = pd.DataFrame({"u": users, "i": items}).drop_duplicates()
    users, items = pairs.u.to_numpy(), pairs.i.to_numpy()
    first = random_split(users, items, (30, 50), seed=7)
    again = random_split(users, items, (30, 50), seed=7)
    other = random_split(users, items, (30, 50), seed=8)
    total = first.train + first.valid + first.test
    assert total.nnz == len(pairs) and total.max() == 1  # every row once, in one part
    assert (first.test != again.test).nnz == 0
    assert (first.test != other.test).nnz > 0


@pytest.fixture(scope="module")
def tiny():
    """A 40 x 60 log of four user groups, each mostly on its own 15 items, split by protocol A."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, 40, 1500)
    own = (users % 4) * 15 + rng.integers(0, 15, 1500)
    items = np.where(rng.random(1500) < 0.7, own, rng.integers(0, 60, 1500))
    pairs = np.unique(np.stack([users, items], axis=1), axis=0)
    return random_split(pairs[:, 0], pairs[:, 1], (40, 60), seed=3)


def test_bpr_mf_is_deterministic_for_a_seed(tiny):
    def fit(seed: int) -> BPRMF:
        return BPRMF(dim=8, lr=0.01, max_epochs=5, seed=seed, device="cpu").fit(
            tiny.train, tiny.valid
        )

    first, again, other = fit(1), fit(1), fit(2)
    assert first.history == again.history
    np.testing.assert_array_equal(first.scores(tiny.train), again.scores(tiny.train))
    assert not np.allclose(first.scores(tiny.train), other.scores(tiny.train))


def test_bpr_mf_stops_early_and_restores_the_best_epoch(tiny):
    patience = 5
    model = BPRMF(dim=8, lr=0.05, patience=patience, max_epochs=300, device="cpu")
    model.fit(tiny.train, tiny.valid)
    mrr = [epoch["valid_mrr@10"] for epoch in model.history]
    best = model.best_epoch
    # ties count as gains (RecBole), so the best is the last maximum; then patience + 1 losses
    assert mrr[best] == max(mrr) and max(mrr[best + 1 :]) < mrr[best]
    assert best > 0 and len(mrr) == best + patience + 2 < 300
    kept = ranking_metrics(model.scores(tiny.train), tiny.train, tiny.valid, ks=(10,))
    assert kept["mrr@10"] == mrr[best]


def test_bpr_mf_without_valid_keeps_the_last_epoch(tiny):
    model = BPRMF(dim=8, max_epochs=3, device="cpu").fit(tiny.train)
    assert [e["epoch"] for e in model.history] == [0, 1, 2] and model.best_epoch == 2
    assert model.history[-1]["valid_mrr@10"] is None


@pytest.fixture(scope="module")
def movielens():
    from features.sources import movielens

    log = movielens.load()["interactions"]  # the file's order, which the shuffle starts from
    users, user_ids = pd.factorize(log["user_id"])
    items, item_ids = pd.factorize(log["item_id"])
    return users, items, (len(user_ids), len(item_ids))


def _protocol_a(model_for, movielens) -> dict[str, float]:
    users, items, shape = movielens
    runs = []
    for seed in (2020, 2021, 2022):
        split = random_split(users, items, shape, seed)
        model = model_for(split)
        runs.append(
            ranking_metrics(model.scores(split.train), split.train + split.valid, split.test)
        )
    return {m: float(np.mean([r[m] for r in runs])) for m in runs[0]}


def _tuned_ease(split):
    """EASE with its L2 weight chosen on the validation split, never on test."""
    grid = (50, 100, 150, 200, 250, 300, 400, 500, 700, 1000)
    fitted = [EASE(l2).fit(split.train) for l2 in grid]
    valid = [
        ranking_metrics(m.scores(split.train), split.train, split.valid)["ndcg@10"] for m in fitted
    ]
    return fitted[int(np.argmax(valid))]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "model_for", "reference", "tolerance"),
    [
        ("popularity", lambda s: Popularity().fit(s.train), 0.145, 0.01),
        ("itemknn", lambda s: ItemKNN(100).fit(s.train), 0.281, 0.01),
        ("ease", _tuned_ease, 0.335, 0.01),
        ("bpr-mf", lambda s: BPRMF(seed=s.seed).fit(s.train, s.valid), 0.292, 0.015),
    ],
)
def test_baselines_land_on_the_published_references(
    movielens, name, model_for, reference, tolerance
):
    got = _protocol_a(model_for, movielens)
    # the tolerances; measured NDCG@10: 0.1421, 0.2783, 0.3251 and BPR-MF 0.2891 (R@10
    # 0.2494, H@10 0.7918; best epochs 94, 69, 92; 12-20 s a seed on 2 busy CPU cores)
    assert got["ndcg@10"] == pytest.approx(reference, abs=tolerance), (name, got)
