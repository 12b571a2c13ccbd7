"""A small serving world in a data folder of its own: both models trained and registered, their
features in the online store, in about a minute and without a replay.

* the recommender: fitted (closed form) on MovieLens-100k, every user's history written to the
  online store's `user_history_fv`;
* the pricing model: fitted on a seeded shop of `items` x `stores` x `weeks` whose true
  elasticities are known, its latest week written to `item_price_fv` and `demand_history_fv`.

Tests and `benchmarks/serving.py` use it to bring the cluster up against
the real registry and online store; a real deployment serves what the training DAGs registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.settings import Settings


@dataclass(frozen=True)
class World:
    recommender_version: str
    pricing_version: str
    users: list[str]  # users with a history online
    items: list[str]  # recommender catalogue
    priced: list[tuple[str, str]]  # (item, store) pairs with pricing features online


def build_world(settings: Settings, items: int = 6, stores: int = 3, weeks: int = 20) -> World:
    from features.sources.prepare import prepare
    from features.store import apply
    from training.tracking import CHAMPION, set_alias

    prepare(settings, "movielens")
    apply(settings)
    recommender, users, catalogue = fit_recommender(settings)
    sales = shop_sales(items, stores, weeks)
    pricing = fit_pricing(sales)
    rec_version = register(settings, "recommender", recommender)
    price_version = register(settings, "pricing", pricing, sales)
    set_alias("recommender", CHAMPION, rec_version)
    set_alias("pricing", CHAMPION, price_version)
    latest = sales[sales.event_timestamp == sales.event_timestamp.max()]
    write_pricing_features(settings, latest)
    return World(
        rec_version,
        price_version,
        users,
        catalogue,
        list(zip(latest.item_id, latest.store_id, strict=True)),
    )


# -- the recommender on MovieLens-100k ---------------------------------------------------------
def fit_recommender(settings: Settings, write_online: bool = True):
    import torch

    from features.store import feature_store
    from training.recommender.model import ItemAutoencoder, RecommenderConfig
    from training.recommender.predict import Recommender

    source = settings.sources_dir / "movielens"
    events = pd.read_parquet(source / "interactions.parquet").sort_values("timestamp")
    items = pd.read_parquet(source / "items.parquet")
    catalogue = sorted(events.item_id.unique())
    users = sorted(events.user_id.unique())
    index = {item: n for n, item in enumerate(catalogue)}
    matrix = torch.zeros((len(users), len(catalogue)))
    rows = events.user_id.map({u: n for n, u in enumerate(users)}).to_numpy()
    matrix[rows, events.item_id.map(index).to_numpy()] = 1.0
    config = RecommenderConfig(spectral_rank=32, epochs=0)
    model = ItemAutoencoder(len(catalogue), config).fit_closed_form(matrix)
    categories = dict(zip(items.item_id, items.category.str.split("|").str[0], strict=True))
    recommender = Recommender(
        model, catalogue, matrix.sum(0).numpy(), categories, {"source": "movielens (sandbox)"}
    )
    history = (
        events.iloc[::-1]
        .drop_duplicates(["user_id", "item_id"])
        .groupby("user_id", sort=True)
        .agg(history_item_ids=("item_id", list), event_timestamp=("timestamp", "max"))
        .reset_index()
    )
    history["history_length"] = history.history_item_ids.map(len).astype("int64")
    if write_online:
        feature_store(settings).write_to_online_store("user_history_fv", history)
    return recommender, users, catalogue


# -- the pricing model on a seeded shop --------------------------------------------------------
def shop_sales(items: int = 6, stores: int = 3, weeks: int = 20, seed: int = 0) -> pd.DataFrame:
    """pricing_v1-shaped rows: units ~ Poisson(150 s (p / base)^e) with e in [-3.5, -1.5] and
    s a store's size (1 for the first store; lognormal around it for the others, as shops differ:
    a demand model must see stores, a per-item regression alone does not)."""
    rng = np.random.default_rng(seed)
    item_ids = [f"sku{n:03d}" for n in range(items)]
    store_ids = [f"store{n}" for n in range(stores)]
    sizes = np.exp(np.random.default_rng(seed + 1).normal(0, 0.4, stores))
    size = dict(zip(store_ids, sizes / sizes[0], strict=True))
    elasticity = dict(zip(item_ids, rng.uniform(-3.5, -1.5, items), strict=True))
    cost = dict(zip(item_ids, np.round(rng.uniform(1.0, 6.0, items), 2), strict=True))
    start = pd.Timestamp("2024-01-04", tz="UTC")
    rows = []
    for w in range(weeks):
        for store in store_ids:
            prices = {i: round(cost[i] * 1.6 * np.exp(rng.normal(0, 0.1)), 2) for i in item_ids}
            for item in item_ids:
                others = [prices[o] for o in item_ids if o != item] or [prices[item]]
                base = cost[item] * 1.6
                units = rng.poisson(150 * size[store] * (prices[item] / base) ** elasticity[item])
                rows.append(
                    {
                        "item_id": item,
                        "store_id": store,
                        "event_timestamp": start + pd.Timedelta(weeks=w),
                        "units": float(units),
                        "price": prices[item],
                        "cost": cost[item],
                        "promo": 0,
                        "feature": 0.0,
                        "competitors": len(others),
                        "competitor_price_mean": float(np.mean(others)),
                        "price_index": prices[item] / float(np.mean(others)),
                        "competitor_promo_share": 0.0,
                        "competitor_feature_mean": 0.0,
                        "category_item_ids": None,
                        "category_prices": None,
                    }
                )
    frame = pd.DataFrame(rows).sort_values(["item_id", "store_id", "event_timestamp"])
    group = frame.groupby(["item_id", "store_id"])
    frame["units_lag1"] = group.units.shift(1)
    frame["price_lag1"] = group.price.shift(1)
    frame["log_units_lag1"] = np.log1p(frame.units_lag1)
    past = group.units.transform(lambda u: u.shift(1).rolling(4, min_periods=1).mean())
    frame["units_mean_4w"] = past
    frame["log_units_mean_4w"] = group.units.transform(
        lambda u: np.log1p(u).shift(1).rolling(4, min_periods=1).mean()
    )
    frame["price_mean_4w"] = group.price.transform(lambda p: p.shift(1).rolling(4, 1).mean())
    frame["promo_share_4w"] = 0.0
    frame["weeks_sold_4w"] = group.units.transform(lambda u: u.shift(1).rolling(4, 1).count())
    frame["weeks_sold_4w"] = frame.weeks_sold_4w.fillna(0).astype("int64")
    return frame.sort_values(["event_timestamp", "item_id", "store_id"], ignore_index=True)


def fit_pricing(sales: pd.DataFrame):
    from training.pricing.model import PricingConfig
    from training.pricing.train import train_pricing

    cut = sales.event_timestamp.unique()[-4]
    config = PricingConfig(l2_grid=(10.0,), valid_folds=1, members=2, max_iter=40)
    fit, valid = sales[sales.event_timestamp < cut], sales[sales.event_timestamp >= cut]
    return train_pricing(fit, valid, config, device="cpu").model


def write_pricing_features(settings: Settings, rows: pd.DataFrame) -> None:
    from features.store import feature_store

    store = feature_store(settings)
    for view_name in ("item_price_fv", "demand_history_fv"):
        view = store.get_feature_view(view_name)
        columns = ["item_id", "store_id", "event_timestamp", *(f.name for f in view.features)]
        store.write_to_online_store(view_name, rows[columns].reset_index(drop=True))


# -- the registry ------------------------------------------------------------------------------
def register(settings: Settings, name: str, model, sales: pd.DataFrame | None = None) -> str:
    """Log `model` (a Recommender or PricingModel) in a run of the `sandbox` experiment and
    register it as a new version of `name`; returns the version."""
    import tempfile

    import mlflow

    from training.tracking import use_tracking

    use_tracking(settings, "sandbox")
    with tempfile.TemporaryDirectory() as folder, mlflow.start_run(run_name=f"sandbox-{name}"):
        checkpoint = model.save(Path(folder) / "model.pt")
        if name == "recommender":
            from training.recommender.registry import log_recommender

            info = log_recommender(checkpoint, model.item_ids[:3])
        else:
            from training.pricing.registry import log_pricing

            assert sales is not None, "a pricing model is logged with example rows"
            info = log_pricing(checkpoint, sales.drop(columns="units").head(3))
    return str(info.registered_model_version)
