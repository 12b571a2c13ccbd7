"""A seeded shop simulator: interaction events and weekly store sales, with the ground truth beside.

Generative model:
- Items have a category, a cost, a base price (a markup the shop chose, not the optimum), an
  "appeal" that drives both online popularity and store demand, a latent vector and a constant
  own-price elasticity e in [-3.5, -1.3].
- Prices are set per item x store x week: the base price with small noise, discounted in promotion
  weeks, and raised for the shocked items from a price shock on.
- Users have a Dirichlet preference over categories, a latent vector and a home store whose prices
  they see. A session is a run of views: the category follows the user's preference (pulled
  towards a trend mix after a taste shift), the item follows popularity within the category,
  re-weighted by exp(user . item). A view becomes an add_to_cart with probability
  CART_RATE * (price / base_price) ** e and a cart a purchase with probability BUY_RATE, so
  expected online demand is proportional to (price / base_price) ** e.
- Store sales per item x store x week are Poisson with mean
  base_demand * store size * (price / base_price) ** e * seasonality * feature lift * noise.
Drift knobs switch on at a date (seasonality for the whole span) and the truth records each one:
a taste shift moves what users view; a price shock moves prices, so both tables; seasonality
scales online traffic and store demand; new items get views and sales rows from their date on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.files import write_json_atomic, write_parquet_atomic

DAY = 86_400
WEEK = 7 * DAY
LATENT_DIM = 8
CANDIDATES = 8  # items drawn by popularity per view, one kept by user-item affinity
AFFINITY = 1.0  # weight of the latent match against popularity
EXTRA_VIEWS = 2.5  # mean views per session beyond the first
CART_RATE = 0.12  # P(add_to_cart | view) at the base price; <= 1 even at a 35 % deal with e = -3.5
BUY_RATE = 0.5  # P(purchase | add_to_cart)
EXTRA_UNITS = 0.3  # mean units per cart beyond the first
PROMO_RATE, PROMO_DISCOUNT = 0.15, (0.10, 0.35)
PRICE_NOISE = 0.04
# Ads run independently of deals: a feature correlated with promos would confound a naive
# log-log regression of units on price.
FEATURE_RATE, FEATURE_LIFT = 0.15, 0.3
DEMAND_NOISE = 0.1  # log-normal overdispersion on top of Poisson
SEASON_PEAK_DAY = 172  # day of the year the annual wave peaks (late June)
WEEKDAY_TRAFFIC = np.array([0.9, 0.9, 0.95, 1.0, 1.1, 1.2, 1.05])  # Monday .. Sunday
HOUR_TRAFFIC = np.array(
    [2, 1, 1, 1, 1, 2, 4, 7, 9, 10, 11, 12, 13, 12, 11, 10, 10, 11, 13, 15, 16, 14, 10, 5], float
)
CATEGORY_NAMES = (
    "produce", "dairy", "bakery", "meat", "seafood", "frozen", "pantry", "snacks", "beverages",
    "coffee", "breakfast", "household", "personal care", "baby", "pet", "health", "beauty",
    "kitchen", "garden", "toys",
)  # fmt: skip
REGIONS = ("north", "south", "east", "west", "central")
EVENT_CODES = np.array(["view", "add_to_cart", "purchase"], dtype=object)
CHUNK = 200_000  # views per block in item choice; bounds the (views x candidates x dim) array


class DriftConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    taste_shift_at: date | None = None
    taste_shift_strength: float = Field(0.5, ge=0, le=1)
    price_shock_at: date | None = None
    price_shock_pct: float = Field(0.2, gt=-1)
    price_shock_share: float = Field(0.3, ge=0, le=1)
    seasonality_amplitude: float = Field(0.0, ge=0, lt=1)
    new_items_at: date | None = None
    new_items: int = Field(50, ge=0)


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 7
    events: int = Field(1_000_000, gt=0)  # approximate number of interaction events
    users: int = Field(20_000, gt=0)
    items: int = Field(2_000, gt=0)  # the catalogue at the start; new items come on top
    categories: int = Field(20, gt=0)
    stores: int = Field(5, gt=0)
    start: date = date(2024, 1, 1)
    days: int = Field(182, ge=7)
    drift: DriftConfig = Field(default_factory=DriftConfig)

    @model_validator(mode="after")
    def _every_category_has_an_item(self) -> SimulatorConfig:
        if self.items < self.categories:
            raise ValueError(f"items ({self.items}) must be >= categories ({self.categories})")
        return self


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


@dataclass
class _World:
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


def oracle_price(cost: float, elasticity: float) -> float:
    """The profit-maximising price under constant elasticity: cost * e / (1 + e) for e < -1."""
    if elasticity >= -1:
        raise ValueError(f"no finite optimal price for elasticity {elasticity} >= -1")
    return cost * elasticity / (1 + elasticity)


def simulate(config: SimulatorConfig) -> SimulatedShop:
    """Generate a shop's interactions and weekly sales, and the truth that produced them."""
    # One child stream per component: switching a drift knob on leaves the others' draws alone.
    rngs = np.random.default_rng(config.seed).spawn(7)
    world = _build_world(config, rngs[:5])
    interactions = _interactions(world, rngs[5])
    sales = _sales(world, rngs[6])
    return _package(world, interactions, sales)


def write_shop(shop: SimulatedShop, dest: Path) -> dict[str, Path]:
    """Write interactions/sales/items/stores as parquet files dest/<table>.parquet and the ground
    truth under dest/truth/ (parquet tables + truth.json with drift schedule, config, counts).
    Each file is written atomically. Returns table name -> path ("truth/<name>" for truth tables,
    "truth" for truth.json)."""
    dest = Path(dest)
    frames = {
        "interactions": shop.interactions,
        "sales": shop.sales,
        "items": shop.items,
        "stores": shop.stores,
    }
    paths = {name: dest / f"{name}.parquet" for name in frames}
    truth_frames = {k: v for k, v in shop.truth.items() if isinstance(v, pd.DataFrame)}
    for name, frame in truth_frames.items():
        frames[f"truth/{name}"] = frame
        paths[f"truth/{name}"] = dest / "truth" / f"{name}.parquet"
    for name, frame in frames.items():
        write_parquet_atomic(pa.Table.from_pandas(frame, preserve_index=False), paths[name])
    payload: dict[str, Any] = {k: v for k, v in shop.truth.items() if k not in truth_frames}
    payload["counts"] = {name: len(frame) for name, frame in frames.items()}
    paths["truth"] = write_json_atomic(payload, dest / "truth" / "truth.json")
    return paths


def _build_world(cfg: SimulatorConfig, rngs: list[np.random.Generator]) -> _World:
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

    world = _World(
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


def _set_prices(world: _World, rng: np.random.Generator) -> None:
    shape = (len(world.cost), world.cfg.stores, world.n_weeks)
    multiplier = np.exp(rng.normal(0, PRICE_NOISE, shape))
    world.promo = rng.random(shape) < PROMO_RATE
    discount = rng.uniform(*PROMO_DISCOUNT, shape)
    multiplier *= np.where(world.promo, 1 - discount, 1.0)
    if world.shock_week is not None:
        multiplier[world.shocked, :, world.shock_week :] *= 1 + world.cfg.drift.price_shock_pct
    world.price = np.maximum(np.round(world.base_price[:, None, None] * multiplier, 2), 0.01)


def _interactions(world: _World, rng: np.random.Generator) -> pd.DataFrame:
    cfg = world.cfg
    # Expected events per session, to size each batch; batches of whole sessions are drawn until
    # the target is reached and the last one is cut at the session that reaches it.
    old = ~world.is_new
    ratio = world.price[old] / world.base_price[old, None, None]
    conversion = np.minimum(1, CART_RATE * ratio ** world.elasticity[old, None, None])
    weights = world.popularity[old]
    per_view = 1 + (1 + BUY_RATE) * np.average(conversion.mean(axis=(1, 2)), weights=weights)
    per_session = (1 + EXTRA_VIEWS) * per_view
    batches, total = [], 0
    while total < cfg.events:
        n_sessions = math.ceil((cfg.events - total) / per_session * 1.05) + 10
        views, per_session_events = _session_batch(world, n_sessions, rng)
        reached = np.cumsum(per_session_events)
        keep = min(int(np.searchsorted(reached, cfg.events - total)) + 1, n_sessions)
        total += int(reached[keep - 1])
        batches.append({k: v[views["session"] < keep] for k, v in views.items()})
    v = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}

    cart, buy = v["cart"], v["buy"]
    user = np.concatenate([v["user"], v["user"][cart], v["user"][buy]])
    item = np.concatenate([v["item"], v["item"][cart], v["item"][buy]])
    second = np.concatenate([v["t"], v["t_cart"][cart], v["t_buy"][buy]])
    second = np.minimum(second, cfg.days * DAY - 1)
    code = np.repeat(np.arange(3), [len(cart), cart.sum(), buy.sum()])
    price = np.concatenate([v["price"], v["price"][cart], v["price"][buy]])
    quantity = np.concatenate([np.zeros(len(cart), np.int64), v["qty"][cart], v["qty"][buy]])

    order = np.lexsort((code, item, user, second))
    user, item, second, code, price, quantity = (
        a[order] for a in (user, item, second, code, price, quantity)
    )
    # Two sessions of one user can overlap; an identical (user, item, second, type) is one event.
    keys = np.stack([second, user, item, code])
    unique = np.ones(len(second), bool)
    unique[1:] = (keys[:, 1:] != keys[:, :-1]).any(axis=0)
    idx = np.flatnonzero(unique)

    start = np.datetime64(cfg.start, "s")
    timestamp = (start + second[idx].astype("timedelta64[s]")).astype("datetime64[ns]")
    return pd.DataFrame(
        {
            "user_id": _ids("u", cfg.users)[user[idx]],
            "item_id": _ids("i", len(world.cost), 4)[item[idx]],
            "timestamp": pd.DatetimeIndex(timestamp).tz_localize("UTC"),
            "event_type": EVENT_CODES[code[idx]],
            "price": price[idx],
            "quantity": pd.arrays.IntegerArray(quantity[idx], code[idx] == 0),
        }
    )


def _session_batch(
    world: _World, n_sessions: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Draw sessions and their views; returns per-view arrays and events per session."""
    cfg = world.cfg
    days = np.arange(cfg.days)
    traffic = WEEKDAY_TRAFFIC[(cfg.start.weekday() + days) % 7] * world.season(days + 0.5)
    user = _draw(world.activity, n_sessions, rng)
    day = _draw(traffic, n_sessions, rng)
    hour = _draw(HOUR_TRAFFIC, n_sessions, rng)
    start = day * DAY + hour * 3600 + rng.random(n_sessions) * 3600
    length = 1 + rng.poisson(EXTRA_VIEWS, n_sessions)

    session = np.repeat(np.arange(n_sessions), length)
    first = np.cumsum(length) - length
    gap = 1 + rng.exponential(45.0, len(session))  # >= 1 s, so flooring keeps views distinct
    gap[first] = 0
    elapsed = np.cumsum(gap)
    t = np.floor(start[session] + elapsed - elapsed[first][session]).astype(np.int64)
    t = np.minimum(t, cfg.days * DAY - 1)  # a session running past the end stops there
    user = user[session]

    item = _choose_items(world, user, t, rng)
    week = (t + world.lead * DAY) // WEEK
    price = world.price[item, world.home[user], week]
    ratio = price / world.base_price[item]
    cart = rng.random(len(t)) < np.minimum(1, CART_RATE * ratio ** world.elasticity[item])
    buy = cart & (rng.random(len(t)) < BUY_RATE)
    t_cart = t + 1 + np.floor(rng.exponential(20.0, len(t))).astype(np.int64)
    t_buy = t_cart + 1 + np.floor(rng.exponential(60.0, len(t))).astype(np.int64)
    qty = 1 + rng.poisson(EXTRA_UNITS, len(t))
    events = length + np.bincount(session, cart.astype(int) + buy, minlength=n_sessions)
    views = {
        "session": session,
        "user": user,
        "item": item,
        "t": t,
        "t_cart": t_cart,
        "t_buy": t_buy,
        "price": price,
        "cart": cart,
        "buy": buy,
        "qty": qty,
    }
    return views, events


def _choose_items(
    world: _World, user: np.ndarray, t: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Category by taste, then CANDIDATES items by popularity, one kept by Gumbel-max on affinity:
    approximately P(item) ∝ popularity * exp(AFFINITY * user . item) within the category."""
    cfg, n_cat, n_items = world.cfg, world.cfg.categories, len(world.cost)
    shifted = (t >= world.day_of(cfg.drift.taste_shift_at) * DAY).astype(np.int64)
    launched = (t >= world.day_of(cfg.drift.new_items_at) * DAY).astype(np.int64)
    taste_cdf = np.cumsum(np.concatenate([world.taste, world.taste_after]), axis=1)

    # Items sorted by category; one cumulative popularity per era (new items weigh 0 before).
    by_cat = np.argsort(world.category, kind="stable")
    cat_sorted = world.category[by_cat]
    eras = [world.popularity[by_cat] * ~world.is_new[by_cat], world.popularity[by_cat]]
    cdf = np.cumsum(np.concatenate(eras))
    lo_idx = np.searchsorted(cat_sorted, np.arange(n_cat))
    hi_idx = np.searchsorted(cat_sorted, np.arange(n_cat), side="right")
    mass_before = np.concatenate([[0.0], cdf])
    lo = np.stack([mass_before[lo_idx], mass_before[n_items + lo_idx]])
    width = np.stack([mass_before[hi_idx], mass_before[n_items + hi_idx]]) - lo
    last = np.stack([_last_positive(e, lo_idx, hi_idx) + k * n_items for k, e in enumerate(eras)])

    chosen = np.empty(len(t), np.int64)
    for s in range(0, len(t), CHUNK):
        u, era = user[s : s + CHUNK], launched[s : s + CHUNK]
        rows = taste_cdf[u + cfg.users * shifted[s : s + CHUNK]]
        cat = np.minimum((rows < rng.random((len(u), 1)) * rows[:, -1:]).sum(axis=1), n_cat - 1)
        r = lo[era, cat][:, None] + rng.random((len(u), CANDIDATES)) * width[era, cat][:, None]
        pos = np.minimum(np.searchsorted(cdf, r, side="right"), last[era, cat][:, None])
        candidates = by_cat[pos % n_items]
        score = AFFINITY * np.einsum(
            "nd,nkd->nk", world.user_latent[u], world.item_latent[candidates]
        )
        pick = np.argmax(score + rng.gumbel(size=score.shape), axis=1)
        chosen[s : s + CHUNK] = candidates[np.arange(len(u)), pick]
    return chosen


def _last_positive(weights: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per category, the sorted position of its last item with weight > 0: a draw that round-off
    pushes past the category's mass lands there."""
    positive = np.flatnonzero(weights > 0)
    return positive[np.searchsorted(positive, hi) - 1].clip(lo, hi - 1)


def _sales(world: _World, rng: np.random.Generator) -> pd.DataFrame:
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
            "item_id": _ids("i", len(world.cost), 4)[item_idx],
            "store_id": _ids("s", cfg.stores, 2)[store_idx],
            "week_start": week_start,
            "price": price.ravel()[keep],
            "units": units.ravel()[keep],
            "cost": world.cost[item_idx],
            "promo": promo.ravel()[keep].astype(np.int64),
            "feature": feature.ravel()[keep],
        }
    )


def _package(world: _World, interactions: pd.DataFrame, sales: pd.DataFrame) -> SimulatedShop:
    cfg, drift, shock = world.cfg, world.cfg.drift, world.shock_week
    n_items = len(world.cost)
    item_ids, user_ids = _ids("i", n_items, 4), _ids("u", cfg.users)
    store_ids = _ids("s", cfg.stores, 2)
    cat_names = np.array(
        [
            CATEGORY_NAMES[k] if k < len(CATEGORY_NAMES) else f"category {k + 1:02d}"
            for k in range(cfg.categories)
        ],
        dtype=object,
    )
    category = cat_names[world.category]
    start = np.datetime64(cfg.start, "D")
    introduced_at = (start + world.intro_day.astype("timedelta64[D]")).astype("datetime64[ns]")
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "name": pd.Series(category).str.title() + " " + pd.Series(item_ids).str[1:],
            "category": category,
            "cost": world.cost,
            "base_price": world.base_price,
            "introduced_at": introduced_at,
        }
    )
    regions = np.array(REGIONS, dtype=object)[np.arange(cfg.stores) % len(REGIONS)]
    stores = pd.DataFrame(
        {
            "store_id": store_ids,
            "name": np.char.add("Aisle ", np.char.title(regions.astype(str))).astype(object),
            "region": regions,
            "channel": np.where(np.arange(cfg.stores) == 0, "online", "store").astype(object),
            "size": world.store_size,
        }
    )
    truth_items = items[["item_id", "category", "cost", "base_price"]].assign(
        elasticity=world.elasticity,
        base_demand=world.base_demand,
        popularity=world.popularity,
        oracle_price=world.cost * world.elasticity / (1 + world.elasticity),
        introduced_at=introduced_at,
        price_shocked=np.isin(np.arange(n_items), world.shocked) & (shock is not None),
        **{f"latent_{k}": world.item_latent[:, k] for k in range(LATENT_DIM)},
    )
    users = pd.DataFrame(
        {"user_id": user_ids, "home_store": store_ids[world.home], "activity": world.activity}
    )
    tastes = {f"taste_{cat_names[c]}": world.taste[:, c] for c in range(cfg.categories)}
    latents = {f"latent_{k}": world.user_latent[:, k] for k in range(LATENT_DIM)}
    users = pd.concat([users, pd.DataFrame({**tastes, **latents})], axis=1)  # one block, not 500
    week_index = np.arange(world.n_weeks)
    weeks = pd.DataFrame(
        {
            "week_start": world.week_starts().astype("datetime64[ns]"),
            "seasonality": world.season(7 * week_index - world.lead + 3.5),
            "price_shock_active": week_index >= (world.n_weeks if shock is None else shock),
        }
    )
    shocked_ids = item_ids[world.shocked].tolist() if shock is not None else []
    drift_truth = {
        "taste_shift": {
            "at": drift.taste_shift_at,
            "strength": drift.taste_shift_strength if drift.taste_shift_at is not None else 0.0,
            "trend_mix": dict(zip(cat_names.tolist(), world.trend.tolist(), strict=True)),
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
            "count": n_items - cfg.items,
            "items": item_ids[cfg.items :].tolist(),
        },
    }
    truth: dict[str, pd.DataFrame | dict] = {
        "items": truth_items,
        "users": users,
        "weeks": weeks,
        "drift": drift_truth,
        "config": cfg.model_dump(),
    }
    return SimulatedShop(interactions, sales, items, stores, truth)


def _draw(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices drawn with probability proportional to `weights` (inverse CDF)."""
    cdf = np.cumsum(weights)
    return np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(cdf) - 1)


def _ids(prefix: str, n: int, width: int = 5) -> np.ndarray:
    """Zero-padded ids numbered from 1 ("u00042"), as an object array ready to index."""
    width = max(width, len(str(n)))
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width)).astype(object)
