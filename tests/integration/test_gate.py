"""The model gate on real registered models: the first model that clears the floors ships; a
worse challenger (trained on corrupted features) is rejected with its reasons on the version; a
better one passes against a weaker champion. MovieLens-100k for the recommender, a seeded shop
for the pricing model, MLflow's registry in a private folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from core.settings import Settings
from training.tracking import CHAMPION, set_alias

pytestmark = pytest.mark.integration
TRAIN_END, VALID_END = datetime(1998, 2, 1, tzinfo=UTC), datetime(1998, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def settings(prepared_settings: Settings, tmp_path_factory) -> Settings:
    data_dir = tmp_path_factory.mktemp("gate") / "data"
    data_dir.mkdir()
    (data_dir / "sources").symlink_to(prepared_settings.sources_dir.resolve())
    return prepared_settings.model_copy(update={"data_dir": data_dir})


def version_tags(name: str, version: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return MlflowClient().get_model_version(name, version).tags


def alias(name: str, which: str) -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(name, which).version)
    except MlflowException:
        return None


# -- the recommender ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def protocol_b(settings: Settings, tmp_path_factory):
    """A protocol-B training set written from MovieLens: histories known at each cut, the new
    items touched next as targets; with the metadata the training set carries."""
    events = pd.read_parquet(settings.sources_dir / "movielens" / "interactions.parquet")
    events = events.sort_values("timestamp")
    items = pd.read_parquet(settings.sources_dir / "movielens" / "items.parquet")
    end = events.timestamp.max() + pd.Timedelta(seconds=1)

    def rows(cut, until, role):
        before = events[events.timestamp < cut]
        history = (
            before.iloc[::-1].groupby("user_id").item_id.apply(lambda s: list(dict.fromkeys(s)))
        )
        after = events[(events.timestamp >= cut) & (events.timestamp < until)]
        touched = after.groupby("user_id").item_id.apply(list)
        return pd.DataFrame(
            {
                "user_id": history.index,
                "role": role,
                "as_of": cut,
                "history_item_ids": history.to_list(),
                "target_item_ids": [
                    [i for i in dict.fromkeys(touched.get(u, [])) if i not in set(h)]
                    for u, h in history.items()
                ],
            }
        )

    frame = pd.concat(
        [rows(TRAIN_END, VALID_END, "fit"), rows(VALID_END, end, "test")], ignore_index=True
    )
    categories = dict(zip(items.item_id, items.category.str.split("|").str[0], strict=True))
    metadata = {
        "dataset": "movielens",
        "feature_service": "recommender_history_v1",
        "windows": {"train_end": str(TRAIN_END), "valid_end": str(VALID_END), "end": str(end)},
        "categories": categories,
    }
    table = pa.Table.from_pandas(frame, preserve_index=False)
    path = tmp_path_factory.mktemp("protocol_b") / "training_set.parquet"
    pq.write_table(table.replace_schema_metadata({"aisle": json.dumps(metadata)}), path)
    return path, frame, categories


def fit_recommender(frame: pd.DataFrame, categories, share: float = 1.0, shuffle: bool = False):
    """Closed form on the fit histories: all of them, a `share` of the users, or with the item
    ids permuted (corrupted features: every history points at the wrong items)."""
    from training.recommender.model import ItemAutoencoder, RecommenderConfig
    from training.recommender.predict import Recommender

    fit = frame[frame.role == "fit"]
    fit = fit.sample(frac=share, random_state=0) if share < 1 else fit
    vocabulary = sorted({i for h in fit.history_item_ids for i in h})
    index = {item: n for n, item in enumerate(vocabulary)}
    if shuffle:
        permuted = np.random.default_rng(0).permutation(len(vocabulary))
        index = {item: int(permuted[n]) for item, n in index.items()}
    matrix = torch.zeros((len(fit), len(vocabulary)))
    for row, history in enumerate(fit.history_item_ids):
        matrix[row, [index[i] for i in history]] = 1.0
    model = ItemAutoencoder(len(vocabulary), RecommenderConfig(epochs=0)).fit_closed_form(matrix)
    return Recommender(model, vocabulary, matrix.sum(0).numpy(), categories)


def test_the_recommender_gate(settings, protocol_b):
    from serving.sandbox import register
    from training.recommender.gate import gate_step

    path, frame, categories = protocol_b
    good = register(settings, "recommender", fit_recommender(frame, categories))
    first = gate_step(path, good, settings)
    assert first["passed"], first["reasons"]  # no champion: the floors only
    assert first["champion_version"] is None
    challenger = first["metrics"]["challenger"]
    assert challenger["ndcg@10"] > first["metrics"]["popularity"]["ndcg@10"]
    assert all(first["behaviour"].values())
    assert alias("recommender", "challenger") == good
    set_alias("recommender", CHAMPION, good)  # as a promotion would

    corrupted = register(settings, "recommender", fit_recommender(frame, categories, shuffle=True))
    worse = gate_step(path, corrupted, settings)
    assert not worse["passed"] and worse["champion_version"] == good
    assert any("ndcg@10" in reason for reason in worse["reasons"])
    tags = version_tags("recommender", corrupted)
    assert tags["aisle.gate"] == "rejected" and "ndcg@10" in tags["aisle.gate.reasons"]
    assert json.loads(tags["aisle.gate.metrics"])["champion"] == challenger
    assert alias("recommender", "challenger") == good  # the rejected one is not the challenger

    weak = register(settings, "recommender", fit_recommender(frame, categories, share=0.05))
    set_alias("recommender", CHAMPION, weak)
    better = register(settings, "recommender", fit_recommender(frame, categories))
    passed = gate_step(path, better, settings)
    assert passed["passed"], passed["reasons"]
    assert passed["metrics"]["challenger"]["ndcg@10"] > passed["metrics"]["champion"]["ndcg@10"]
    assert version_tags("recommender", better)["aisle.gate"] == "passed"
    assert alias("recommender", "challenger") == better


# -- the pricing model --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def weekly(tmp_path_factory):
    from serving.sandbox import shop_sales

    sales = shop_sales(items=6, stores=3, weeks=24)
    weeks = sorted(sales.event_timestamp.unique())
    sales["role"] = "fit"
    sales.loc[sales.event_timestamp >= weeks[-8], "role"] = "valid"
    sales.loc[sales.event_timestamp >= weeks[-4], "role"] = "test"
    metadata = {
        "dataset": "shop",
        "feature_service": "pricing_v1",
        "windows": {"end": str(weeks[-1])},
        "rows": sales.role.value_counts().to_dict(),
    }
    path = tmp_path_factory.mktemp("weekly") / "training_set.parquet"
    table = pa.Table.from_pandas(sales, preserve_index=False)
    pq.write_table(table.replace_schema_metadata({"aisle": json.dumps(metadata)}), path)
    return path, sales


def fit_pricing(sales: pd.DataFrame, corrupt: bool = False):
    from serving.sandbox import fit_pricing as fit

    history = sales[sales.role != "test"].drop(columns="role")
    if corrupt:  # prices shuffled across rows: the model cannot learn the price response
        shuffled = np.random.default_rng(0).permutation(history.price.to_numpy())
        history = history.assign(price=shuffled)
    return fit(history)


def test_the_pricing_gate(settings, weekly):
    from serving.sandbox import register
    from training.pricing.gate import gate_step

    path, sales = weekly
    example = sales.drop(columns="role")
    good = register(settings, "pricing", fit_pricing(sales), example)
    first = gate_step(path, good, settings)
    assert first["passed"], first["reasons"]
    assert first["metrics"]["challenger"]["rmse"] < first["metrics"]["last value"]["rmse"]
    assert first["behaviour"] == {"demand falls with price": True, "guardrails held": True}
    set_alias("pricing", CHAMPION, good)

    corrupted = register(settings, "pricing", fit_pricing(sales, corrupt=True), example)
    worse = gate_step(path, corrupted, settings)
    assert not worse["passed"]
    assert any("rmse" in reason for reason in worse["reasons"])
    assert version_tags("pricing", corrupted)["aisle.gate"] == "rejected"
    assert alias("pricing", "challenger") == good
