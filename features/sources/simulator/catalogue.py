"""The shop's own tables, as a shop would export them: the items (name, category, cost, base
price, when introduced) and the stores (name, region, channel, size)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import SimulatorConfig
from .world import World

CATEGORY_NAMES = (
    "produce", "dairy", "bakery", "meat", "seafood", "frozen", "pantry", "snacks", "beverages",
    "coffee", "breakfast", "household", "personal care", "baby", "pet", "health", "beauty",
    "kitchen", "garden", "toys",
)  # fmt: skip
REGIONS = ("north", "south", "east", "west", "central")


def category_names(cfg: SimulatorConfig) -> np.ndarray:
    """The name of each category index; numbered names past the built-in ones."""
    return np.array(
        [
            CATEGORY_NAMES[k] if k < len(CATEGORY_NAMES) else f"category {k + 1:02d}"
            for k in range(cfg.categories)
        ],
        dtype=object,
    )


def items_table(world: World) -> pd.DataFrame:
    item_ids = world.item_ids()
    category = category_names(world.cfg)[world.category]
    return pd.DataFrame(
        {
            "item_id": item_ids,
            "name": pd.Series(category).str.title() + " " + pd.Series(item_ids).str[1:],
            "category": category,
            "cost": world.cost,
            "base_price": world.base_price,
            "introduced_at": world.introduced_at(),
        }
    )


def stores_table(world: World) -> pd.DataFrame:
    n_stores = world.cfg.stores
    regions = np.array(REGIONS, dtype=object)[np.arange(n_stores) % len(REGIONS)]
    return pd.DataFrame(
        {
            "store_id": world.store_ids(),
            "name": np.char.add("Aisle ", np.char.title(regions.astype(str))).astype(object),
            "region": regions,
            "channel": np.where(np.arange(n_stores) == 0, "online", "store").astype(object),
            "size": world.store_size,
        }
    )
