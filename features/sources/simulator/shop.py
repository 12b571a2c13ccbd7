"""`simulate`: one seeded run of the simulator, from the config to the `SimulatedShop` (the four
canonical tables and the truth)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .catalogue import items_table, stores_table
from .config import SimulatorConfig
from .events import interaction_events
from .sales import weekly_sales
from .truth import ground_truth
from .world import build_world


@dataclass
class SimulatedShop:
    """The four canonical tables and the truth: `items` (elasticity, base demand, oracle price,
    latent vector...), `users` (home store, taste before any shift, latent vector), `weeks`
    (seasonality, price shock on), `drift` (each knob's date and size) and `config`."""

    interactions: pd.DataFrame
    sales: pd.DataFrame
    items: pd.DataFrame
    stores: pd.DataFrame
    truth: dict[str, pd.DataFrame | dict]


def simulate(config: SimulatorConfig) -> SimulatedShop:
    """Generate a shop's interactions and weekly sales, and the truth that produced them."""
    # One child stream per component: switching a drift knob on leaves the others' draws alone.
    rngs = np.random.default_rng(config.seed).spawn(7)
    world = build_world(config, rngs[:5])
    interactions = interaction_events(world, rngs[5])
    sales = weekly_sales(world, rngs[6])
    items = items_table(world)
    return SimulatedShop(
        interactions, sales, items, stores_table(world), ground_truth(world, items)
    )
