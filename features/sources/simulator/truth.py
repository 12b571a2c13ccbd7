"""The ground truth beside the shop's tables: per item (elasticity, base demand, oracle price,
latent vector...), per user (home store, taste before any shift, latent vector), per week
(seasonality, price shock on), each drift knob's date and size, and the config."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .catalogue import category_names
from .world import LATENT_DIM, SEASON_PEAK_DAY, World


def oracle_price(cost: float, elasticity: float) -> float:
    """The profit-maximising price under constant elasticity: cost * e / (1 + e) for e < -1."""
    if elasticity >= -1:
        raise ValueError(f"no finite optimal price for elasticity {elasticity} >= -1")
    return cost * elasticity / (1 + elasticity)


def ground_truth(world: World, items: pd.DataFrame) -> dict[str, pd.DataFrame | dict]:
    """The truth tables ("items", "users", "weeks"), the drift schedule and the config;
    `items` is the shop's items table, which the truth's items extend."""
    return {
        "items": _items(world, items),
        "users": _users(world),
        "weeks": _weeks(world),
        "drift": _drift(world),
        "config": world.cfg.model_dump(),
    }


def _items(world: World, items: pd.DataFrame) -> pd.DataFrame:
    shocked = np.isin(np.arange(len(world.cost)), world.shocked) & (world.shock_week is not None)
    return items[["item_id", "category", "cost", "base_price"]].assign(
        elasticity=world.elasticity,
        base_demand=world.base_demand,
        popularity=world.popularity,
        oracle_price=world.cost * world.elasticity / (1 + world.elasticity),
        introduced_at=world.introduced_at(),
        price_shocked=shocked,
        **{f"latent_{k}": world.item_latent[:, k] for k in range(LATENT_DIM)},
    )


def _users(world: World) -> pd.DataFrame:
    cfg = world.cfg
    users = pd.DataFrame(
        {
            "user_id": world.user_ids(),
            "home_store": world.store_ids()[world.home],
            "activity": world.activity,
        }
    )
    cat_names = category_names(cfg)
    tastes = {f"taste_{cat_names[c]}": world.taste[:, c] for c in range(cfg.categories)}
    latents = {f"latent_{k}": world.user_latent[:, k] for k in range(LATENT_DIM)}
    return pd.concat([users, pd.DataFrame({**tastes, **latents})], axis=1)  # one block, not 500


def _weeks(world: World) -> pd.DataFrame:
    shock = world.shock_week
    week_index = np.arange(world.n_weeks)
    return pd.DataFrame(
        {
            "week_start": world.week_starts().astype("datetime64[ns]"),
            "seasonality": world.season(7 * week_index - world.lead + 3.5),
            "price_shock_active": week_index >= (world.n_weeks if shock is None else shock),
        }
    )


def _drift(world: World) -> dict:
    cfg, drift, shock = world.cfg, world.cfg.drift, world.shock_week
    item_ids = world.item_ids()
    shocked_ids = item_ids[world.shocked].tolist() if shock is not None else []
    return {
        "taste_shift": {
            "at": drift.taste_shift_at,
            "strength": drift.taste_shift_strength if drift.taste_shift_at is not None else 0.0,
            "trend_mix": dict(zip(category_names(cfg).tolist(), world.trend.tolist(), strict=True)),
        },
        "price_shock": {
            "at": drift.price_shock_at,
            "effective_week": None if shock is None else world.week_start(shock),
            "pct": drift.price_shock_pct if shock is not None else 0.0,
            "share": drift.price_shock_share if shock is not None else 0.0,
            "items": shocked_ids,
        },
        "seasonality": {
            "at": cfg.start if drift.seasonality_amplitude > 0 else None,
            "amplitude": drift.seasonality_amplitude,
            "period_days": 365.25,
            "peak_day_of_year": SEASON_PEAK_DAY,
        },
        "new_items": {
            "at": drift.new_items_at,
            "count": len(item_ids) - cfg.items,
            "items": item_ids[cfg.items :].tolist(),
        },
    }
