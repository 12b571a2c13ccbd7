"""What the drift checks compare: one row per event (the recommender's inputs) or per store x
item x week (the pricing model's), described relative to the reference window so that a shift
shows as a change of distribution.

Interactions (`interaction_frame`):
* `category` of the item, `event_type`: what shoppers look at and do (taste, conversion);
* `item_known`: whether the model's training window saw the item (new items);
* `price_ratio`: the price shown over the item's median reference price (price shocks);
* `item_popularity`: log(1 + the item's views in the reference) (taste, new items).

Sales (`sales_frame`): `price_ratio` per item x store, `promo`, `feature`, and the target
`log_units` (target drift: demand, seasonality).

The per-item statistics (median price, views, the items seen) come from an **anchor**: the first
part of the reference window (`split_reference`). The reference sample the check compares with
is the rest, described against the same anchor, so both sides are out of sample: against their
own medians the reference's price ratios were 13 % tighter than any later day's, and every
clean day on the simulator read as a price drift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

INTERACTION_NUMERICAL = ["price_ratio", "item_popularity"]
INTERACTION_CATEGORICAL = ["category", "event_type", "item_known"]
SALES_NUMERICAL = ["price_ratio", "feature", "log_units"]
SALES_CATEGORICAL = ["promo"]


def split_reference(
    reference: pd.DataFrame, time_column: str, sample_share: float = 0.25
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(anchor, sample): the reference's first (1 - sample_share) of time, and the rest."""
    times = pd.to_datetime(reference[time_column], utc=True)
    cut = times.min() + (times.max() - times.min()) * (1 - sample_share)
    cut = cut.ceil("D") if time_column == "timestamp" else cut
    return reference[times < cut], reference[times >= cut]


def interaction_frame(
    events: pd.DataFrame,
    reference: pd.DataFrame,
    categories: dict[str, str],
    known_items: set[str] | None = None,
) -> pd.DataFrame:
    """`events` described against the anchor `reference` (both canonical interaction rows)."""
    known = set(reference.item_id) if known_items is None else known_items
    has_price = "price" in events and "price" in reference
    ref_price = reference.groupby("item_id").price.median() if has_price else pd.Series(dtype=float)
    ref_views = reference.groupby("item_id").size()
    items = events.item_id
    return pd.DataFrame(
        {
            "timestamp": events.timestamp.to_numpy(),
            "category": items.map(categories).fillna("unknown").to_numpy(),
            "event_type": events.event_type.astype(str).to_numpy(),
            "item_known": np.where(items.isin(known), "yes", "no"),
            "price_ratio": (events.price / items.map(ref_price)).to_numpy()
            if has_price
            else np.nan,
            "item_popularity": np.log1p(items.map(ref_views).fillna(0).to_numpy(dtype=float)),
        }
    )


def sales_frame(sales: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """`sales` (canonical weekly rows) described against the anchor `reference`."""
    keys = ["item_id", "store_id"]
    ref_price = reference.groupby(keys).price.median().rename("reference_price")
    joined = sales.join(ref_price, on=keys)
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(sales.week_start, utc=True).to_numpy(),
            "price_ratio": (joined.price / joined.reference_price).to_numpy(),
            "promo": sales.get("promo", pd.Series(0, index=sales.index)).astype(str).to_numpy(),
            "feature": sales.get("feature", pd.Series(np.nan, index=sales.index)).to_numpy(),
            "log_units": np.log1p(sales.units.to_numpy(dtype=float)),
        }
    )
