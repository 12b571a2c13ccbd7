"""The simulator's own generative model applied to answers a model gives: a list of items shown to
a visitor, or a price put on a shelf, gets the response the hidden world would give it, drawn or
in exact expectation, so every answer has a known expected outcome.

Recommendations. A visitor looks at position p of a shown list with probability
`examination(p)` = 1 / log2(p + 1) ** POSITION_DECAY (the DCG discount: the standard cascade-free
examination model of click models) and, having looked, views the item with its attractiveness

    attractiveness(u, i) = 1 - exp(-SESSION_VIEWS * share(u, i)),
    share(u, i) = taste[u, c_i] * popularity_i * exp(AFFINITY * u . i) / Z[u, c_i],

where share(u, i) is the simulator's own probability that one of the visitor's views lands on i
(the category by taste, the item by popularity re-weighted by the latent match, Z summing that
weight over the category's listed items; the events generator draws it approximately, by
Gumbel-max over CANDIDATES popularity draws, this model uses the exact form), and
SESSION_VIEWS = 1 + EXTRA_VIEWS the views of a session: attractiveness is the probability that
the item is among a session's worth of the visitor's own browsing (Poisson approximation). No
free scale: on the default config a list of the visitor's ten most attractive items gets a
click-through (P(any view)) of about 44 %, the ten most popular items about 12 %. A view becomes
an add_to_cart with CART_RATE * (price / base_price) ** e at the visitor's home-store price of the
week, a cart a purchase with BUY_RATE, of 1 + Poisson(EXTRA_UNITS) units, exactly as in events.py.
An item the world lacks (id unknown, index -1) or not yet on sale that week is never viewed.

Prices. A shelf (item x store) sells Poisson units with mean
base_demand * store size * (price / base_price) ** e * season / 7 per day: the sales model's mean
without its random feature lift (mean about 1.03) and log-normal noise (mean 1), which an answer
does not control. Items not yet on sale that week sell nothing.

Weeks index the world's weeks (0 .. n_weeks - 1): tastes after a taste shift and new items count
from the first week starting on or after their date, as in the weekly sales.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .config import SimulatorConfig
from .events import AFFINITY, BUY_RATE, CART_RATE, EXTRA_UNITS, EXTRA_VIEWS
from .world import World, build_world

POSITION_DECAY = 1.0  # examination(p) = log2(p + 1) ** -POSITION_DECAY; 1 is the DCG discount
SESSION_VIEWS = 1 + EXTRA_VIEWS  # a session's views: the browsing an item must win a place in
CHUNK = 2_000  # users per block when scoring the whole catalogue: bounds (users x items) arrays


def examination(k: int) -> np.ndarray:
    """P(the visitor looks at position p), p = 1 .. k."""
    return np.log2(np.arange(2, k + 2)) ** -POSITION_DECAY


@dataclass
class ResponseModel:
    """The hidden world's response to answers. Arrays index users, items and stores as the world
    does; -1 in a shown list is padding or an unknown item."""

    world: World
    _norms: dict[bool, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_config(cls, config: SimulatorConfig) -> ResponseModel:
        """The world `simulate(config)` uses: same seed, same items, users and elasticities."""
        rngs = np.random.default_rng(config.seed).spawn(7)
        return cls(build_world(config, rngs[:5]))

    # ---- ids ---------------------------------------------------------------------------------
    def item_ids(self) -> np.ndarray:
        return self.world.item_ids()

    def user_ids(self) -> np.ndarray:
        return self.world.user_ids()

    def store_ids(self) -> np.ndarray:
        return self.world.store_ids()

    def item_index(self, ids: Sequence[str]) -> np.ndarray:
        """Item indices of ids like "i0001"; -1 for an id the world lacks."""
        return pd.Index(self.item_ids()).get_indexer(pd.Index(ids, dtype=object))

    def user_index(self, ids: Sequence[str]) -> np.ndarray:
        return pd.Index(self.user_ids()).get_indexer(pd.Index(ids, dtype=object))

    def store_index(self, ids: Sequence[str]) -> np.ndarray:
        return pd.Index(self.store_ids()).get_indexer(pd.Index(ids, dtype=object))

    # ---- recommendations ---------------------------------------------------------------------
    def visitors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n visitors' user indices, drawn by activity as sessions are."""
        activity = self.world.activity
        return rng.choice(len(activity), n, p=activity / activity.sum())

    def attractiveness(self, users: np.ndarray, shown: np.ndarray, week: int = 0) -> np.ndarray:
        """P(view | looked at) per user and shown item: 1 - exp(-SESSION_VIEWS * share)."""
        share = self._share(np.asarray(users), np.asarray(shown), self.check_week(week))
        return -np.expm1(-SESSION_VIEWS * share)

    def view_probability(self, users: np.ndarray, shown: np.ndarray, week: int = 0) -> np.ndarray:
        """(n, k): P(the visitor views the item at each position) = examination * attractiveness."""
        shown = np.atleast_2d(shown)
        attractive = self.attractiveness(np.asarray(users)[:, None], shown, week)
        return examination(shown.shape[1]) * attractive

    def cart_probability(
        self, items: np.ndarray, prices: np.ndarray, base: float = CART_RATE
    ) -> np.ndarray:
        """P(add_to_cart | view) = base * (price / base_price) ** e in [0, 1]; `base` is the rate
        at the base price. 0 for index -1."""
        items = np.asarray(items)
        known = items >= 0
        i = np.where(known, items, 0)
        w = self.world
        with np.errstate(invalid="ignore"):
            p = base * (np.asarray(prices, float) / w.base_price[i]) ** w.elasticity[i]
        return np.where(known, np.clip(np.nan_to_num(p), 0, 1), 0.0)

    def home_prices(self, users: np.ndarray, shown: np.ndarray, week: int) -> np.ndarray:
        """(n, k): the price each visitor sees for each shown item (home store, that week); nan
        for index -1."""
        shown = np.atleast_2d(shown)
        known = shown >= 0
        store = self.world.home[np.asarray(users)][:, None]
        price = self.world.price[np.where(known, shown, 0), store, self.check_week(week)]
        return np.where(known, price, np.nan)

    def recommendation_expectations(
        self, users: np.ndarray, shown: np.ndarray, week: int
    ) -> dict[str, np.ndarray]:
        """Per answer, exact expectations: "click" P(at least one view), "views", "carts",
        "purchases" (expected counts of recommended items), "units" and "revenue"
        (price * quantity of recommended items bought)."""
        shown = np.atleast_2d(shown)
        view = self.view_probability(users, shown, week)
        price = self.home_prices(users, shown, week)
        cart = view * self.cart_probability(shown, price)
        buy = cart * BUY_RATE
        return {
            "click": -np.expm1(np.log1p(-view).sum(axis=1)),
            "views": view.sum(axis=1),
            "carts": cart.sum(axis=1),
            "purchases": buy.sum(axis=1),
            "units": (1 + EXTRA_UNITS) * buy.sum(axis=1),
            "revenue": (1 + EXTRA_UNITS) * np.nansum(buy * price, axis=1),
        }

    def respond_to_recommendations(
        self, users: np.ndarray, shown: np.ndarray, week: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Draws with the same probabilities, each (n, k): "viewed", "carted", "bought" (bool),
        "quantity" (int, 0 unless bought) and "price" (home store, that week; nan for -1)."""
        shown = np.atleast_2d(shown)
        view = self.view_probability(users, shown, week)
        price = self.home_prices(users, shown, week)
        viewed = rng.random(shown.shape) < view
        carted = viewed & (rng.random(shown.shape) < self.cart_probability(shown, price))
        bought = carted & (rng.random(shown.shape) < BUY_RATE)
        quantity = np.where(bought, 1 + rng.poisson(EXTRA_UNITS, shown.shape), 0)
        return {
            "viewed": viewed,
            "carted": carted,
            "bought": bought,
            "quantity": quantity,
            "price": price,
        }

    def popularity_lists(self, n: int, k: int, week: int = 0) -> np.ndarray:
        """(n, k): everyone gets the k most popular items on sale that week (the baseline)."""
        on_sale = self.on_sale(self.check_week(week))
        ranked = np.flatnonzero(on_sale)[np.argsort(-self.world.popularity[on_sale], kind="stable")]
        return np.broadcast_to(_padded(ranked[:k], k), (n, k)).copy()

    def affinity_lists(self, users: np.ndarray, k: int, week: int = 0) -> np.ndarray:
        """(n, k): per user the k items with the highest true attractiveness, best first (a
        known-better recommender)."""
        users, week = np.asarray(users), self.check_week(week)
        k_eff = min(k, int(self.on_sale(week).sum()))
        out = np.full((len(users), k), -1, np.int64)
        for s in range(0, len(users), CHUNK):
            share = self._share_all(users[s : s + CHUNK], week)
            top = np.argpartition(-share, k_eff - 1, axis=1)[:, :k_eff]
            order = np.argsort(-np.take_along_axis(share, top, axis=1), axis=1, kind="stable")
            out[s : s + CHUNK, :k_eff] = np.take_along_axis(top, order, axis=1)
        return out

    # ---- prices ------------------------------------------------------------------------------
    def expected_units(
        self,
        items: np.ndarray,
        stores: np.ndarray,
        prices: np.ndarray,
        week: int,
        days: float = 1.0,
    ) -> np.ndarray:
        """A shelf's expected units at `prices` over `days` of `week`: the sales model's mean
        base_demand * store size * (price / base_price) ** e * season / 7 * days, without its
        random feature lift and noise; 0 for an item not on sale that week."""
        w, week = self.world, self.check_week(week)
        items, stores = np.asarray(items), np.asarray(stores)
        ratio = np.asarray(prices, float) / w.base_price[items]
        season = w.season(np.array(7 * week - w.lead + 3.5))
        mean = w.base_demand[items] * w.store_size[stores] * ratio ** w.elasticity[items] * season
        return np.where(self.on_sale(week)[items], mean / 7 * days, 0.0)

    def sell(
        self,
        items: np.ndarray,
        stores: np.ndarray,
        prices: np.ndarray,
        week: int,
        rng: np.random.Generator,
        days: float = 1.0,
    ) -> np.ndarray:
        """Units sold: Poisson draws of `expected_units`."""
        return rng.poisson(self.expected_units(items, stores, prices, week, days))

    def price_expectations(
        self,
        items: np.ndarray,
        stores: np.ndarray,
        prices: np.ndarray,
        week: int,
        days: float = 1.0,
    ) -> dict[str, np.ndarray]:
        """Per shelf, expected "units", "revenue" (price * units), "profit" ((price - cost) *
        units)."""
        prices = np.asarray(prices, float)
        units = self.expected_units(items, stores, prices, week, days)
        cost = self.world.cost[np.asarray(items)]
        return {"units": units, "revenue": prices * units, "profit": (prices - cost) * units}

    def shelf_prices(self, items: np.ndarray, stores: np.ndarray, week: int) -> np.ndarray:
        """The shop's own price of each shelf that week."""
        return self.world.price[np.asarray(items), np.asarray(stores), self.check_week(week)]

    def oracle_prices(self, items: np.ndarray) -> np.ndarray:
        """cost * e / (1 + e): the profit-maximising price under constant elasticity."""
        e = self.world.elasticity[np.asarray(items)]
        return self.world.cost[np.asarray(items)] * e / (1 + e)

    # ---- the world's quantities --------------------------------------------------------------
    def check_week(self, week: int) -> int:
        """`week` as an int; a clear error outside the world's weeks."""
        if not 0 <= week < self.world.n_weeks:
            raise ValueError(
                f"week {week} is outside the world's weeks 0..{self.world.n_weeks - 1}"
            )
        return int(week)

    def on_sale(self, week: int) -> np.ndarray:
        """Per item, on sale that week (the starting catalogue in the partial week 0 too)."""
        w = self.world
        return w.intro_day <= max(0, 7 * week - w.lead)

    def _shifted(self, week: int) -> bool:
        return week >= self.world.first_week_from(self.world.cfg.drift.taste_shift_at)

    def _launched(self, week: int) -> bool:
        return bool(self.on_sale(week).all())

    def _norm(self, launched: bool) -> np.ndarray:
        """(users, categories): Z, each user's popularity x affinity weight summed over a
        category's items on sale (new items count once launched)."""
        if launched not in self._norms:
            w = self.world
            on_sale = np.ones(len(w.cost), bool) if launched else ~w.is_new
            onehot = np.eye(w.cfg.categories)[w.category] * on_sale[:, None]
            users = np.arange(w.cfg.users)
            self._norms[launched] = np.concatenate(
                [self._weight(users[s : s + CHUNK]) @ onehot for s in range(0, len(users), CHUNK)]
            )
        return self._norms[launched]

    def _weight(self, users: np.ndarray) -> np.ndarray:
        w = self.world
        return w.popularity * np.exp(AFFINITY * w.user_latent[users] @ w.item_latent.T)

    def _share(self, users: np.ndarray, items: np.ndarray, week: int) -> np.ndarray:
        """share(u, i), broadcast over users and items; 0 for -1 and items not on sale."""
        w = self.world
        users, items = np.broadcast_arrays(users, items)
        known = items >= 0
        i = np.where(known, items, 0)
        cat = w.category[i]
        taste = (w.taste_after if self._shifted(week) else w.taste)[users, cat]
        match = np.einsum("...d,...d->...", w.user_latent[users], w.item_latent[i])
        weight = w.popularity[i] * np.exp(AFFINITY * match)
        share = taste * weight / self._norm(self._launched(week))[users, cat]
        return np.where(known & self.on_sale(week)[i], share, 0.0)

    def _share_all(self, users: np.ndarray, week: int) -> np.ndarray:
        """(len(users), items): share(u, i) over the whole catalogue."""
        w = self.world
        taste = (w.taste_after if self._shifted(week) else w.taste)[users][:, w.category]
        norm = self._norm(self._launched(week))[users][:, w.category]
        return np.where(self.on_sale(week), taste * self._weight(users) / norm, 0.0)


def _padded(items: np.ndarray, k: int) -> np.ndarray:
    return np.concatenate([items, np.full(k - len(items), -1, np.int64)])
