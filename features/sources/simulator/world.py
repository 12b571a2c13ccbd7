"""The hidden world both generators read: items (category, cost, base price, appeal, latent
vector, elasticity), users (home store, activity, tastes before and after a taste shift, latent
vector), stores (size), and the price of every item in every store in every week."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from .config import SimulatorConfig

LATENT_DIM = 8
PROMO_RATE, PROMO_DISCOUNT = 0.15, (0.10, 0.35)
PRICE_NOISE = 0.04
SEASON_PEAK_DAY = 172  # day of the year the annual wave peaks (late June)


@dataclass
class World:
    """The hidden state both generators read; per-item arrays cover old then new items."""

    cfg: SimulatorConfig
    lead: int  # days from the Monday on or before `start` to `start`: week w starts at 7w - lead
    n_weeks: int
    category: np.ndarray
    cost: np.ndarray
    base_price: np.ndarray
    elasticity: np.ndarray
    base_demand: np.ndarray
    popularity: np.ndarray
    item_latent: np.ndarray
    intro_day: np.ndarray  # days since start; 0 for the starting catalogue
    store_size: np.ndarray
    home: np.ndarray
    activity: np.ndarray
    taste: np.ndarray  # (users, categories) before the taste shift
    taste_after: np.ndarray
    trend: np.ndarray  # the category mix tastes are pulled towards
    user_latent: np.ndarray
    price: np.ndarray  # (items, stores, weeks); set by _set_prices once items and shock exist
    promo: np.ndarray
    shocked: np.ndarray  # item indices
    shock_week: int | None

    def day_of(self, when: date | None) -> float:
        return math.inf if when is None else float((when - self.cfg.start).days)

    def first_week_from(self, when: date | None) -> int:
        """The first week starting on or after `when`: weekly quantities change at week bounds."""
        if when is None:
            return self.n_weeks
        return max(0, math.ceil((self.day_of(when) + self.lead) / 7))

    def week_start(self, week: int) -> date:
        return self.cfg.start + timedelta(days=7 * week - self.lead)

    def week_starts(self) -> np.ndarray:
        return np.datetime64(self.week_start(0), "D") + 7 * np.arange(self.n_weeks)

    @property
    def is_new(self) -> np.ndarray:
        return np.arange(len(self.cost)) >= self.cfg.items

    def season(self, day: np.ndarray) -> np.ndarray:
        year_day = self.cfg.start.timetuple().tm_yday - 1 + day
        wave = np.cos(2 * np.pi * (year_day - SEASON_PEAK_DAY) / 365.25)
        return 1 + self.cfg.drift.seasonality_amplitude * wave

    def item_ids(self) -> np.ndarray:
        return _ids("i", len(self.cost), 4)

    def user_ids(self) -> np.ndarray:
        return _ids("u", self.cfg.users)

    def store_ids(self) -> np.ndarray:
        return _ids("s", self.cfg.stores, 2)

    def introduced_at(self) -> np.ndarray:
        """Each item's first day on sale, as datetime64[ns]."""
        start = np.datetime64(self.cfg.start, "D")
        return (start + self.intro_day.astype("timedelta64[D]")).astype("datetime64[ns]")


def build_world(cfg: SimulatorConfig, rngs: list[np.random.Generator]) -> World:
    """The world for `cfg`, drawn from five streams: items, new items, users, prices, drift."""
    r_items, r_new, r_users, r_prices, r_drift = rngs
    drift, n_cat = cfg.drift, cfg.categories
    n_new = drift.new_items if drift.new_items_at is not None else 0
    lead = cfg.start.weekday()
    n_weeks = math.ceil((cfg.days + lead) / 7)

    cat_mix = r_items.dirichlet(np.full(n_cat, 2.0))
    # Every category gets at least one starting item, so a user's taste always has somewhere to go.
    cat_old = r_items.permutation(
        np.concatenate([np.arange(n_cat), r_items.choice(n_cat, cfg.items - n_cat, p=cat_mix)])
    )
    old = _item_attributes(cat_old, r_items)
    new = _item_attributes(r_new.choice(n_cat, n_new, p=cat_mix), r_new)
    attrs = {k: np.concatenate([old[k], new[k]]) for k in old}
    intro_day = np.zeros(cfg.items + n_new)
    intro_day[cfg.items :] = (drift.new_items_at - cfg.start).days if n_new else 0

    store_size = np.exp(r_users.normal(0, 0.15, cfg.stores))
    home = r_users.choice(cfg.stores, cfg.users, p=store_size / store_size.sum())
    activity = r_users.lognormal(0, 1.0, cfg.users)
    taste = r_users.dirichlet(3 * r_users.dirichlet(np.full(n_cat, 2.0)) + 0.05, cfg.users)
    user_latent = r_users.normal(0, LATENT_DIM**-0.5, (cfg.users, LATENT_DIM))

    trend = r_drift.dirichlet(np.full(n_cat, 0.5))
    n_shocked = round(drift.price_shock_share * cfg.items)
    shocked = np.sort(r_drift.choice(cfg.items, n_shocked, replace=False))
    strength = drift.taste_shift_strength
    taste_after = (1 - strength) * taste + strength * trend

    world = World(
        cfg=cfg,
        lead=lead,
        n_weeks=n_weeks,
        **attrs,
        intro_day=intro_day,
        store_size=store_size,
        home=home,
        activity=activity,
        taste=taste,
        taste_after=taste_after,
        trend=trend,
        user_latent=user_latent,
        price=np.empty(0),
        promo=np.empty(0),
        shocked=shocked,
        shock_week=None,
    )
    if drift.price_shock_at is not None:
        world.shock_week = world.first_week_from(drift.price_shock_at)
    _set_prices(world, r_prices)
    return world


def _item_attributes(category: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(category)
    appeal = rng.standard_normal(n)  # one trait behind both online popularity and store demand
    cost = np.maximum(np.round(rng.lognormal(np.log(6.0), 0.7, n), 2), 0.5)
    return {
        "category": category,
        "cost": cost,
        "base_price": np.round(cost * rng.uniform(1.25, 2.2, n), 2),
        "elasticity": rng.uniform(-3.5, -1.3, n),
        # High enough that weekly counts are rarely zero, so log(units) is defined.
        "base_demand": np.maximum(40.0 * np.exp(0.5 * appeal), 10.0),
        "popularity": np.exp(appeal + 0.5 * rng.standard_normal(n)),
        "item_latent": rng.standard_normal((n, LATENT_DIM)),
    }


def _set_prices(world: World, rng: np.random.Generator) -> None:
    shape = (len(world.cost), world.cfg.stores, world.n_weeks)
    multiplier = np.exp(rng.normal(0, PRICE_NOISE, shape))
    world.promo = rng.random(shape) < PROMO_RATE
    discount = rng.uniform(*PROMO_DISCOUNT, shape)
    multiplier *= np.where(world.promo, 1 - discount, 1.0)
    if world.shock_week is not None:
        multiplier[world.shocked, :, world.shock_week :] *= 1 + world.cfg.drift.price_shock_pct
    world.price = np.maximum(np.round(world.base_price[:, None, None] * multiplier, 2), 0.01)


def _ids(prefix: str, n: int, width: int = 5) -> np.ndarray:
    """Zero-padded ids numbered from 1 ("u00042"), as an object array ready to index."""
    width = max(width, len(str(n)))
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width)).astype(object)
