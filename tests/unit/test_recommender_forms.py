"""The recommender's form by catalogue size (training/recommender/forms.py) through `train_step`,
the one code path of the DAG and the CLI: a tiny `dense_max_items` sends a small synthetic shop
to the factor form (served through FactorRecommender), the default keeps it dense with EASE in
the reference table, and the gate holds a model to EASE on its own rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from core.settings import Settings, get_settings
from training.recommender.forms import DENSE, FACTORS, batched_metrics, choose_form
from training.recommender.model import RecommenderConfig

ITEMS, USERS, TASTES = 240, 600, 8


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[Settings, object]:
    """A protocol-B training set of a shop whose users each like one of 8 groups of 30 items
    (85 % of their touches there, the rest anywhere): fit histories with their validation
    targets, then test rows (history + validation items) with new targets. Every item is in
    some fit history, so no target is outside the vocabulary."""
    from training.training_sets import write_training_set

    rng = np.random.default_rng(7)
    items = [f"i{n:03d}" for n in range(ITEMS)]
    group = ITEMS // TASTES
    rows = []
    for u in range(USERS):
        taste = u % TASTES
        liked = rng.permutation(np.arange(taste * group, (taste + 1) * group))
        noise = rng.choice(ITEMS, 6, replace=False)
        touched = list(dict.fromkeys([*liked[:20].tolist(), *noise.tolist()]))
        touched = [touched[i] for i in rng.permutation(len(touched))]
        history, valid, test = touched[:12], touched[12:17], touched[17:]
        user = f"u{u:04d}"
        rows.append((user, "fit", [items[i] for i in history], [items[i] for i in valid]))
        seen = [items[i] for i in history + valid]
        rows.append((user, "test", seen, [items[i] for i in test if items[i] not in seen]))
    frame = pd.DataFrame(rows, columns=["user_id", "role", "history_item_ids", "target_item_ids"])
    frame["as_of"] = pd.Timestamp("2024-03-01", tz="UTC")
    metadata = {
        "dataset": "synthetic",
        "feature_service": "recommender_history_v1",
        "windows": {
            "train_end": "2024-02-01T00:00:00+00:00",
            "valid_end": "2024-03-01T00:00:00+00:00",
            "end": "2024-04-01T00:00:00+00:00",
        },
        "categories": {i: f"c{n % 4}" for n, i in enumerate(items)},
    }
    folder = tmp_path_factory.mktemp("forms")
    path = write_training_set(frame, metadata, folder / "set" / "training_set.parquet")
    return get_settings(data_dir=folder / "data"), path


def test_the_form_follows_the_catalogue_size():
    config = RecommenderConfig(dense_max_items=1000)
    assert choose_form(1000, config).form == DENSE
    large = choose_form(100_000, config)
    assert large.form == FACTORS and "100,000 items > dense_max_items 1,000" in large.why
    assert large.tags()["aisle.recommender.form"] == FACTORS


def test_batched_metrics_are_the_whole_matrix_metrics():
    from training.recommender.evaluate import ranking_metrics

    rng = np.random.default_rng(0)
    seen = sp.csr_matrix((rng.random((50, 40)) < 0.2).astype(np.float32))
    targets = sp.csr_matrix(((rng.random((50, 40)) < 0.1) & (seen.toarray() == 0)).astype(float))
    scores = rng.random((50, 40)).astype(np.float32)
    whole = ranking_metrics(scores, seen, targets)
    batched = batched_metrics(_rows_of(scores, targets), seen, targets, batch=7)
    assert batched == pytest.approx(whole, abs=1e-12)


def _rows_of(scores: np.ndarray, targets: sp.csr_matrix):
    """A scorer that returns the rows of `scores` in the order batched_metrics asks for them
    (the users with a target, in order)."""
    users = iter(np.flatnonzero(np.asarray(targets.sum(axis=1)).ravel() > 0))

    def score(history: sp.csr_matrix) -> np.ndarray:
        return scores[[next(users) for _ in range(history.shape[0])]]

    return score


def test_above_the_bound_the_factor_form_trains_records_and_serves(shop):
    import mlflow

    from training.recommender.factors import FactorRecommender
    from training.recommender.pipeline import train_step
    from training.recommender.predict import load_checkpoint

    settings, path = shop
    config = {"dense_max_items": 100, "factor_ranks": [4, 8, 16]}
    trained = train_step(path, config, settings, device="cpu")
    assert trained["form"] == FACTORS
    # EASE is left out above the bound (its inverse is items x items): popularity alone
    assert set(trained["references"]) == {"popularity"}
    # 8 tastes: the model finds them; popularity cannot (measured: 0.75 against 0.08)
    assert trained["test"]["ndcg@10"] > trained["references"]["popularity"]["ndcg@10"] + 0.3
    run = mlflow.get_run(trained["run_id"])
    assert run.data.params["form"] == FACTORS
    assert run.data.params["factor_rank"] in {"4", "8", "16"}
    assert "240 items > dense_max_items 100" in run.data.tags["aisle.recommender.form_why"]
    model = load_checkpoint(trained["checkpoint"], device="cpu")
    assert isinstance(model, FactorRecommender)
    assert model.metadata["form"]["form"] == FACTORS
    assert "EASE skipped" in model.metadata["reference_notes"][0]
    answer = model.recommend(["i000", "i001"], 5)
    assert len(answer.item_ids) == 5 and not {"i000", "i001"} & set(answer.item_ids)


@pytest.fixture(scope="module")
def dense_run(shop):
    from training.recommender.pipeline import train_step

    settings, path = shop
    return train_step(path, {"epochs": 0}, settings, device="cpu")


def test_below_the_bound_the_dense_form_trains_beside_ease(dense_run):
    from training.recommender.predict import load_checkpoint

    trained = dense_run
    assert trained["form"] == DENSE
    (ease,) = [name for name in trained["references"] if name.startswith("ease")]
    reference = trained["references"][ease]
    assert reference["l2"] > 0
    # the dense form ships EASE's weights only where EASE is better on validation; here the
    # closed form is (measured: valid NDCG@10 above EASE's), so the autoencoder ships
    model = load_checkpoint(trained["checkpoint"], device="cpu")
    assert model.metadata["metrics"]["valid"]["ndcg@10"] >= reference["valid_ndcg@10"]
    assert "weights" not in model.metadata["form"]


def test_the_gates_ease_is_the_training_runs_ease_on_the_same_rows(shop, dense_run):
    """The gate refits EASE and scores lists through list_metrics; on a set with no target
    outside the vocabulary that is the figure the training run computed with ranking_metrics."""
    from training.recommender.evaluate import list_metrics
    from training.recommender.pipeline import ease_lists

    _, path = shop
    frame = pd.read_parquet(path)
    test = frame[(frame.role == "test") & (frame.target_item_ids.map(len) > 0)]
    ((name, reference),) = [(n, m) for n, m in dense_run["references"].items() if "l2" in m]
    lists = ease_lists(path, reference["l2"], test.user_id.tolist(), 20)
    got = list_metrics(lists, [list(t) for t in test.target_item_ids])
    # float64 EASE scores: only exact ties could order differently (argsort against topk)
    assert got["ndcg@10"] == pytest.approx(reference["ndcg@10"], abs=1e-9), name


def test_the_gate_rejects_a_first_model_below_ease_and_names_it(shop, dense_run):
    from serving.sandbox import register
    from training.recommender.factors import FactorRecommender
    from training.recommender.gate import gate_step
    from training.recommender.predict import load_checkpoint

    settings, path = shop
    trained = load_checkpoint(dense_run["checkpoint"], device="cpu")
    # one factor: little more than popularity, far below EASE on 8 tastes, but with the training
    # run's reference table, as a weak model of that run would carry
    rng = np.random.default_rng(0)
    weak = FactorRecommender(
        rng.random((ITEMS, 1)), rng.random((ITEMS, 1)), trained.item_ids,
        trained.popularity.numpy(), trained.categories, trained.metadata,
    )  # fmt: skip
    decision = gate_step(path, register(settings, "recommender", weak), settings)
    assert not decision["passed"]
    ease = next(n for n in decision["metrics"] if n.startswith("ease"))
    assert any(f"ndcg@10 threshold ({ease})" in r for r in decision["reasons"]), decision
