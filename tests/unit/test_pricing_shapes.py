"""The pricing model on another shape of shop (many items in one store): the structure is
chosen on the valid weeks, recorded, and served through the one checkpoint shape; and the gate
holds a first model to the strongest reference of the same rows, named in the rejection.

Small on purpose (8 items x 1 store x 30 weeks, one validation fold): the figures on the
simulator's shapes are in benchmarks/pricing.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.settings import GatePolicy
from training.pricing.dataset import PricingData
from training.pricing.model import STRUCTURES, PricingConfig
from training.pricing.predict import PricingModel
from training.pricing.train import train_pricing

WEEKS, VALID, TEST = 30, 6, 4


@pytest.fixture(scope="module")
def one_store() -> PricingData:
    from serving.sandbox import shop_sales

    sales = shop_sales(items=8, stores=1, weeks=WEEKS, seed=3)
    weeks = sorted(sales.event_timestamp.unique())
    role = np.where(sales.event_timestamp >= weeks[-TEST - VALID], "valid", "fit")
    role = np.where(sales.event_timestamp >= weeks[-TEST], "test", role)
    parts = {name: sales[role == name].reset_index(drop=True) for name in ("fit", "valid", "test")}
    return PricingData(**parts, metadata={})


@pytest.fixture(scope="module")
def trained(one_store):
    config = PricingConfig(valid_folds=1, members=2, max_iter=100)
    return train_pricing(one_store.fit, one_store.valid, config, device="cpu")


def test_the_structure_is_chosen_on_the_valid_weeks_and_kept_in_the_checkpoint(
    trained, one_store, tmp_path
):
    tried = trained.valid_rmse_by_structure
    middle = PricingConfig().l2_grid[1]
    assert set(tried) == set(STRUCTURES) and all(middle in tried[s] for s in STRUCTURES)
    best = min((score, s, l2) for s, scores in tried.items() for l2, score in scores.items())
    assert (trained.structure, trained.l2) == (best[1], best[2])  # the best pair tried
    assert trained.model.design.context == list(STRUCTURES[trained.structure].context)

    path = trained.model.save(tmp_path / "pricing.pt", {"structure": trained.structure})
    served = PricingModel.load(path)  # serving's one loader, whatever the structure
    assert served.metadata["structure"] == trained.structure
    test = one_store.test
    pd.testing.assert_frame_equal(served.predict(test), trained.model.predict(test))
    assert (served.elasticities(test).elasticity < 0).all()


def test_a_first_model_worse_than_a_reference_is_rejected_with_it_named(one_store):
    from training.pricing.gate import judge

    history = pd.concat([one_store.fit, one_store.valid], ignore_index=True)
    shuffled = history.assign(price=np.random.default_rng(0).permutation(history.price))
    cut = history.event_timestamp.unique()[-VALID]
    config = PricingConfig(l2_grid=(10.0,), structures=("minimal",), valid_folds=1, members=1)
    blind = train_pricing(
        shuffled[shuffled.event_timestamp < cut],
        shuffled[shuffled.event_timestamp >= cut],
        config,
        device="cpu",
    ).model  # prices shuffled: it cannot learn the price response
    policy = GatePolicy(behaviour_sample=3)  # behaviour is not the subject here
    decision = judge("pricing", "1", {"challenger": blind}, None, one_store, policy)

    references = {k: v for k, v in decision.metrics.items() if k not in ("challenger", "rows")}
    assert len(references) == 5  # (a)-(e), scored on the rows the challenger was
    strongest = min(references, key=lambda name: references[name]["rmse"])
    assert strongest != "last value"  # beating the naive floor is not enough any more
    assert not decision.passed
    assert any(f"rmse threshold ({strongest})" in reason for reason in decision.reasons)


def test_a_checkpoint_from_before_the_shared_context_weights_loads(trained, one_store, tmp_path):
    import torch

    path = trained.model.save(tmp_path / "pricing.pt")
    payload = torch.load(path, weights_only=True)
    for state in payload["members"]:  # as written before the weights shared across items
        state["context_weights"] += state.pop("context_shared")
    torch.save(payload, path)
    old = PricingModel.load(path)
    expected = trained.model.predict(one_store.test).log_units
    assert np.allclose(old.predict(one_store.test).log_units, expected, rtol=1e-9)


def test_an_unknown_structure_is_refused_with_the_known_ones_named():
    with pytest.raises(ValueError, match=r"choose one or more of .*'lean'"):
        PricingConfig(structures=("per-store",))
