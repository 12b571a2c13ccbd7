"""The interaction events: sessions of views, some becoming an add_to_cart and a purchase.

A session is a run of views: the category follows the user's preference (pulled towards a trend
mix after a taste shift), the item follows popularity within the category, re-weighted by
exp(user . item). A view becomes an add_to_cart with probability
CART_RATE * (price / base_price) ** e and a cart a purchase with probability BUY_RATE, so expected
online demand is proportional to (price / base_price) ** e.

Grocery mode (`staples_per_user` > 0): each user's staples, drawn once as views are (taste,
popularity, affinity) from the starting catalogue, replace a share of their views and convert more
often, so a shopper buys the same few items again and again. Off, no draw is made for it: the
shops of every other configuration stay as they were.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .world import World

DAY = 86_400
WEEK = 7 * DAY
CANDIDATES = 8  # items drawn by popularity per view, one kept by user-item affinity
AFFINITY = 1.0  # weight of the latent match against popularity
EXTRA_VIEWS = 2.5  # mean views per session beyond the first
CART_RATE = 0.12  # P(add_to_cart | view) at the base price; <= 1 even at a 35 % deal with e = -3.5
BUY_RATE = 0.5  # P(purchase | add_to_cart)
EXTRA_UNITS = 0.3  # mean units per cart beyond the first
WEEKDAY_TRAFFIC = np.array([0.9, 0.9, 0.95, 1.0, 1.1, 1.2, 1.05])  # Monday .. Sunday
HOUR_TRAFFIC = np.array(
    [2, 1, 1, 1, 1, 2, 4, 7, 9, 10, 11, 12, 13, 12, 11, 10, 10, 11, 13, 15, 16, 14, 10, 5], float
)
EVENT_CODES = np.array(["view", "add_to_cart", "purchase"], dtype=object)
CHUNK = 200_000  # views per block in item choice; bounds the (views x candidates x dim) array


def interaction_events(world: World, rng: np.random.Generator) -> pd.DataFrame:
    """About `events` interaction events, in time order, one row per distinct event."""
    cfg = world.cfg
    staples = _staples(world, rng) if cfg.staples_per_user else None
    v = _views(world, rng, staples)
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
            "user_id": world.user_ids()[user[idx]],
            "item_id": world.item_ids()[item[idx]],
            "timestamp": pd.DatetimeIndex(timestamp).tz_localize("UTC"),
            "event_type": EVENT_CODES[code[idx]],
            "price": price[idx],
            "quantity": pd.arrays.IntegerArray(quantity[idx], code[idx] == 0),
        }
    )


def _staples(world: World, rng: np.random.Generator) -> np.ndarray:
    """(users, staples_per_user) item indices: each user's staples, chosen as a view at the
    start is (so never an item introduced later)."""
    users = np.repeat(np.arange(world.cfg.users), world.cfg.staples_per_user)
    chosen = _choose_items(world, users, np.zeros(len(users), np.int64), rng)
    return chosen.reshape(world.cfg.users, world.cfg.staples_per_user)


def _views(
    world: World, rng: np.random.Generator, staples: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-view arrays of whole sessions, drawn in batches until they hold `events` events; the
    last batch is cut at the session that reaches the target."""
    target = world.cfg.events
    per_session = _expected_events_per_session(world)
    batches, total = [], 0
    while total < target:
        n_sessions = math.ceil((target - total) / per_session * 1.05) + 10
        views, per_session_events = _session_batch(world, n_sessions, rng, staples)
        reached = np.cumsum(per_session_events)
        keep = min(int(np.searchsorted(reached, target - total)) + 1, n_sessions)
        total += int(reached[keep - 1])
        batches.append({k: v[views["session"] < keep] for k, v in views.items()})
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def _expected_events_per_session(world: World) -> float:
    """Expected events per session over the starting catalogue, to size each batch."""
    old = ~world.is_new
    ratio = world.price[old] / world.base_price[old, None, None]
    conversion = np.minimum(1, CART_RATE * ratio ** world.elasticity[old, None, None])
    weights = world.popularity[old]
    per_view = 1 + (1 + BUY_RATE) * np.average(conversion.mean(axis=(1, 2)), weights=weights)
    return (1 + EXTRA_VIEWS) * per_view


def _session_batch(
    world: World, n_sessions: int, rng: np.random.Generator, staples: np.ndarray | None = None
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
    boost = np.ones(len(t))
    if staples is not None:  # grocery mode: a share of the views goes to the user's staples
        staple = rng.random(len(t)) < cfg.staple_share
        which = rng.integers(0, staples.shape[1], int(staple.sum()))
        item[staple] = staples[user[staple], which]
        boost[staple] = cfg.staple_cart_boost
    week = (t + world.lead * DAY) // WEEK
    price = world.price[item, world.home[user], week]
    ratio = price / world.base_price[item]
    cart = rng.random(len(t)) < np.minimum(1, boost * CART_RATE * ratio ** world.elasticity[item])
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
    world: World, user: np.ndarray, t: np.ndarray, rng: np.random.Generator
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


def _draw(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices drawn with probability proportional to `weights` (inverse CDF)."""
    cdf = np.cumsum(weights)
    return np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(cdf) - 1)
