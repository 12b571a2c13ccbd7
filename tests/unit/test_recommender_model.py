"""The torch recommender: closed-form start, seeded fine-tuning with early stopping, and its
protocol-A score against the strongest published baseline."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from training.recommender.evaluate import ranking_metrics
from training.recommender.model import ItemAutoencoder, RecommenderConfig, standardise
from training.recommender.splits import random_split
from training.recommender.train import dense, score_all, train_recommender


def _random_split(seed: int = 0):
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, 80, 3000), (rng.zipf(1.5, 3000) % 60)
    pairs = pd.DataFrame({"u": users, "i": items}).drop_duplicates()
    return random_split(pairs.u.to_numpy(), pairs.i.to_numpy(), (80, 60), seed=1)


def test_standardise_ignores_seen_items():
    scores = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    seen = torch.tensor([[False, False, False, True]])
    z = standardise(scores, seen)
    free = z[0, :3]
    assert float(free.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(free.pow(2).mean()) == pytest.approx(1.0, abs=1e-5)


def test_the_closed_form_is_the_dlae_solution():
    x = torch.tensor([[1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=torch.float32)
    config = RecommenderConfig(l2=2.0, dropout=0.5, spectral_weight=0.0)
    model = ItemAutoencoder(3, config).fit_closed_form(x)
    gram = (x.T @ x).double()
    penalty = torch.diag(2.0 + 1.0 * gram.diag())  # p / (1 - p) = 1
    expected = torch.linalg.solve(gram + penalty, gram).float()
    assert torch.allclose(model.weights, expected, atol=1e-6)


def test_training_is_seeded_and_keeps_the_best_epoch():
    split = _random_split()
    config = RecommenderConfig(
        l2=5.0, spectral_rank=8, epochs=4, patience=10, learning_rate=1e-2, batch_size=16, seed=3
    )
    seen = []
    first = train_recommender(split.train, split.valid, config, on_epoch=seen.append)
    again = train_recommender(split.train, split.valid, config)
    assert [e.epoch for e in seen] == [0, 1, 2, 3, 4]
    assert seen[0].loss is None and all(e.loss > 0 for e in seen[1:])
    assert torch.equal(first.model.weights, again.model.weights)
    assert [e.valid for e in first.epochs] == [e.valid for e in again.epochs]
    valid = [e.valid["ndcg@10"] for e in first.epochs]
    assert first.best_epoch == int(np.argmax(valid))
    # the kept weights are the best epoch's: scoring again reproduces its validation NDCG
    scores = score_all(first.model, dense(split.train, torch.device("cpu"))).numpy()
    again_valid = ranking_metrics(scores, split.train, split.valid)["ndcg@10"]
    assert again_valid == pytest.approx(max(valid), abs=1e-6)


def test_early_stopping_stops_after_patience_epochs_without_gain():
    split = _random_split()
    # a learning rate this large wrecks the closed form at once: no epoch beats epoch 0
    config = RecommenderConfig(l2=5.0, spectral_rank=8, epochs=50, patience=2, learning_rate=10.0)
    result = train_recommender(split.train, split.valid, config)
    assert result.best_epoch == 0
    assert len(result.epochs) == 1 + 2


def test_bad_training_input_is_a_clear_error():
    empty = sp.csr_matrix((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="no interaction"):
        train_recommender(empty, empty, RecommenderConfig())
    with pytest.raises(ValueError, match="differ in shape"):
        train_recommender(sp.eye(3, format="csr"), sp.eye(4, format="csr"), RecommenderConfig())


@pytest.mark.slow
def test_protocol_a_reaches_the_strongest_baseline():
    """MovieLens-100k, RecBole's random split, 3 seeds: the issue's bar is EASE's 0.335.

    Measured 0.3361 (0.3400, 0.3279, 0.3405 for seeds 2020-2022; the fine-tuning epochs did not
    beat the closed form on validation for any seed). The bar is asserted as it is, not loosened:
    the closed form runs in float64 and is deterministic.
    """
    from features.sources import movielens

    log = movielens.load()["interactions"]
    users, user_ids = pd.factorize(log["user_id"])
    items, item_ids = pd.factorize(log["item_id"])
    runs = []
    for seed in (2020, 2021, 2022):
        split = random_split(users, items, (len(user_ids), len(item_ids)), seed)
        result = train_recommender(
            split.train, split.valid, replace(RecommenderConfig(), seed=seed)
        )
        scores = score_all(result.model, dense(split.train, torch.device("cpu"))).numpy()
        runs.append(ranking_metrics(scores, split.train + split.valid, split.test)["ndcg@10"])
    assert float(np.mean(runs)) >= 0.335, runs
