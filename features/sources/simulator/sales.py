"""The weekly store sales: per item x store x week, Poisson units with mean
base_demand * store size * (price / base_price) ** e * seasonality * feature lift * noise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .world import World

# Ads run independently of deals: a feature correlated with promos would confound a naive
# log-log regression of units on price.
FEATURE_RATE, FEATURE_LIFT = 0.15, 0.3
DEMAND_NOISE = 0.1  # log-normal overdispersion on top of Poisson


def weekly_sales(world: World, rng: np.random.Generator) -> pd.DataFrame:
    """One row per listed item x store x whole week, ordered by week, store, item."""
    cfg = world.cfg
    # Only weeks wholly inside [start, start + days): a partial week's demand is not a week's.
    w = np.arange(world.n_weeks)
    weeks = w[(7 * w >= world.lead) & (7 * w + 7 <= cfg.days + world.lead)]
    price = world.price[:, :, weeks].transpose(2, 1, 0)  # (week, store, item): the output order
    promo = world.promo[:, :, weeks].transpose(2, 1, 0)
    feature = np.where(
        rng.random(price.shape) < FEATURE_RATE, np.round(rng.uniform(0.2, 1.0, price.shape), 2), 0.0
    )
    season = world.season(7 * weeks - world.lead + 3.5)
    mean = (
        world.base_demand
        * world.store_size[:, None]
        * (price / world.base_price) ** world.elasticity
        * season[:, None, None]
        * np.exp(FEATURE_LIFT * feature)
        * rng.lognormal(-(DEMAND_NOISE**2) / 2, DEMAND_NOISE, price.shape)
    )
    units = rng.poisson(mean).astype(float)
    listed = 7 * weeks[:, None, None] - world.lead >= world.intro_day  # new items from their week
    listed = np.broadcast_to(listed, price.shape)
    week_idx, store_idx, item_idx = (g.ravel()[listed.ravel()] for g in np.indices(price.shape))
    keep = listed.ravel()
    week_start = world.week_starts()[weeks][week_idx].astype("datetime64[ns]")
    return pd.DataFrame(
        {
            "item_id": world.item_ids()[item_idx],
            "store_id": world.store_ids()[store_idx],
            "week_start": week_start,
            "price": price.ravel()[keep],
            "units": units.ravel()[keep],
            "cost": world.cost[item_idx],
            "promo": promo.ravel()[keep].astype(np.int64),
            "feature": feature.ravel()[keep],
        }
    )
