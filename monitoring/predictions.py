"""Prediction drift: what the champion proposes for the interval against what it proposes for
the reference window.

* Recommender: its recommendations to the interval's shoppers against the reference's, by the
  category and the reference popularity of the recommended items.
* Pricing: its quotes (profit-maximising, no guardrails) for the interval's store x item rows
  against the reference's, as the proposed price over the shelf price, with each row's
  `pricing_v1` features joined point-in-time from the offline store as training does.

A shopper's history is what the curated data held before them (the anchor part of the reference,
then the sample, then the interval), most recent first, as the online store would serve it.
Up to `USERS` shoppers (or `QUOTES` rows) per side. The result is reported beside the feature
drift (its own Evidently report, `predictions.html`) and does not by itself retrain: a model that
proposes differently for different traffic is the feature drift's consequence, not a cause.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.settings import DriftPolicy

from .drift import DriftResult, check_drift

USERS, K, QUOTES = 300, 10, 100


def recommendation_frame(model, histories: list[list[str]], categories, popularity) -> pd.DataFrame:
    from training.recommender.predict import Request

    answers = model.recommend_batch([Request(h, K) for h in histories])
    items = [i for a in answers if not a.fallback for i in a.item_ids]
    return pd.DataFrame(
        {
            "recommended_category": [categories.get(i, "unknown") for i in items],
            "recommended_popularity": np.log1p([popularity.get(i, 0) for i in items]),
        }
    )


def histories(events: pd.DataFrame, users: list[str]) -> list[list[str]]:
    ordered = events[events.user_id.isin(users)].sort_values("timestamp", ascending=False)
    grouped = ordered.groupby("user_id", sort=False).item_id.apply(
        lambda s: list(dict.fromkeys(s))[:1000]
    )
    return [grouped.get(u, []) for u in users]


def prediction_drift(
    model,
    anchor: pd.DataFrame,
    sample: pd.DataFrame,
    current: pd.DataFrame,
    categories: dict[str, str],
    policy: DriftPolicy,
) -> tuple[DriftResult, object] | None:
    """The drift of the champion's recommendations, or None when a side has no personal answer."""
    rng = np.random.default_rng(0)
    popularity = anchor.item_id.value_counts().to_dict()

    def side(events: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
        users = events.user_id.unique()
        picked = rng.choice(users, size=min(USERS, len(users)), replace=False).tolist()
        return recommendation_frame(model, histories(known, picked), categories, popularity)

    theirs = side(sample, pd.concat([anchor, sample]))
    ours = side(current, pd.concat([anchor, sample, current]))
    if theirs.empty or ours.empty:
        return None
    return check_drift(ours, theirs, ["recommended_popularity"], ["recommended_category"], policy)


def price_prediction_drift(
    settings, model, sample: pd.DataFrame, current: pd.DataFrame, policy: DriftPolicy
) -> tuple[DriftResult, object] | None:
    """The drift of the champion's proposed prices, or None when a side has no quotable row."""
    theirs = proposed_prices(settings, model, sample)
    ours = proposed_prices(settings, model, current)
    if theirs.empty or ours.empty:
        return None
    return check_drift(ours, theirs, ["proposed_price_ratio"], [], policy)


def proposed_prices(settings, model, sales: pd.DataFrame) -> pd.DataFrame:
    """Quotes for up to QUOTES of `sales`' rows (canonical weekly rows), over the shelf price."""
    from features.store import training_set
    from training.pricing.dataset import FEATURE_SERVICE
    from training.pricing.design import UnknownEntity

    rows = sales.sample(min(QUOTES, len(sales)), random_state=0)
    entities = pd.DataFrame(
        {
            "item_id": rows.item_id.to_numpy(),
            "store_id": rows.store_id.to_numpy(),
            "event_timestamp": pd.to_datetime(rows.week_start, utc=True).to_numpy(),
        }
    )
    features = training_set(settings, entities, FEATURE_SERVICE, unknown="allow")
    features = features[features.price.notna()].reset_index(drop=True)
    ratios = []
    for n in range(len(features)):
        row = features.iloc[[n]]
        cost = row.get("cost")
        cost = None if cost is None or pd.isna(cost.iloc[0]) else float(cost.iloc[0])
        try:
            quote = model.quote(row, cost)
        except UnknownEntity:  # an item or store the champion never saw
            continue
        ratios.append(quote.decision.price / float(row.price.iloc[0]))
    return pd.DataFrame({"proposed_price_ratio": ratios})
