"""Prediction drift of the recommender: what the champion recommends to the interval's shoppers
against what it recommends to the reference window's, by the category and the reference
popularity of the recommended items.

A shopper's history is what the curated data held before them (the anchor part of the reference,
then the sample, then the interval), most recent first, as the online store would serve it.
Up to `USERS` shoppers per side, top 10 each. The result is reported beside the feature drift
(its own Evidently report, `predictions.html`) and does not by itself retrain: a model that
recommends differently to different traffic is the feature drift's consequence, not a cause.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aisle.settings import DriftPolicy

from .drift import DriftResult, check_drift

USERS, K = 300, 10


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
