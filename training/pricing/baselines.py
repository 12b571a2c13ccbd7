"""Reference demand models, fitted and scored in the same harness as ours (same rows, same target
log(1 + units), same features from `pricing_v1`):

(a) `LogLog()`: per item, log units on own log price, promotion and ad flags (the textbook model).
(b) `LogLog(store_effects=True, cross_prices=True)`: per item, plus store fixed effects and the
    log prices of every item of the category that week (cross effects).
(c) `GradientBoosting()`: an untuned histogram gradient-boosting model on store, item, the log
    prices, promotion, ad and ISO week of the year.
(d) `LastValue()`: the item x store's last log units in the training rows.
(e) `LogLog(store_effects=True, cross_prices=True, lags=True)`: (b) plus last week's and the
    4-week mean log units.

Their elasticities: (a), (b) and (e) have one own-price coefficient per item (`own_elasticity`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


def log_units(frame: pd.DataFrame) -> np.ndarray:
    return np.log1p(frame["units"].to_numpy(dtype="float64"))


def log_price_table(frame: pd.DataFrame, item_ids: list[str]) -> np.ndarray:
    """(rows, items): the log price of every listed item of the row's category that week, the
    row's own price in its own column; 0 where an item is not listed."""
    index = {item: n for n, item in enumerate(item_ids)}
    out = np.zeros((len(frame), len(item_ids)))
    rows = zip(
        frame.item_id, frame.price, frame.category_item_ids, frame.category_prices, strict=True
    )
    for r, (own, price, ids, prices) in enumerate(rows):
        if ids is not None and not isinstance(ids, float):
            for other, other_price in zip(ids, prices, strict=True):
                if other in index and other_price is not None and other_price > 0:
                    out[r, index[other]] = np.log(other_price)
        out[r, index[own]] = np.log(price)
    return out


def _lags(frame: pd.DataFrame, fallback: float) -> np.ndarray:
    mean_4w = frame.log_units_mean_4w.to_numpy(dtype="float64")
    mean_4w = np.where(np.isnan(mean_4w), fallback, mean_4w)
    lag1 = frame.log_units_lag1.to_numpy(dtype="float64")
    return np.column_stack([np.where(np.isnan(lag1), mean_4w, lag1), mean_4w])


@dataclass
class LogLog:
    """Per-item ordinary least squares on log price(s); the options add (b)'s and (e)'s terms."""

    store_effects: bool = False
    cross_prices: bool = False
    lags: bool = False
    coefficients: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    stores: dict[str, list[str]] = field(default_factory=dict, repr=False)
    item_ids: list[str] = field(default_factory=list, repr=False)
    own_elasticity: dict[str, float] = field(default_factory=dict)
    fallback: dict[str, float] = field(default_factory=dict, repr=False)

    def fit(self, frame: pd.DataFrame) -> LogLog:
        self.item_ids = sorted(frame.item_id.unique())
        y = log_units(frame)
        for item in self.item_ids:
            rows = (frame.item_id == item).to_numpy()
            self.fallback[item] = float(y[rows].mean())
            self.stores[item] = sorted(frame.store_id[rows].unique())
            design, own_column = self._design(frame[rows], item)
            beta, *_ = np.linalg.lstsq(design, y[rows], rcond=None)
            self.coefficients[item] = beta
            self.own_elasticity[item] = float(beta[own_column])
        return self

    def _design(self, rows: pd.DataFrame, item: str) -> tuple[np.ndarray, int]:
        columns = [np.ones(len(rows))]
        if self.cross_prices:
            prices = log_price_table(rows, self.item_ids)
            own_column = 1 + self.item_ids.index(item)
            columns += list(prices.T)
        else:
            own_column = 1
            columns.append(np.log(rows.price.to_numpy(dtype="float64")))
        columns += [rows.promo.to_numpy(dtype="float64"), rows.feature.to_numpy(dtype="float64")]
        if self.lags:
            columns += list(_lags(rows, self.fallback[item]).T)
        if self.store_effects:
            stores = self.stores[item]
            # one dummy per store but the first (the intercept's); unseen stores get the first's
            columns += [(rows.store_id == s).to_numpy(dtype="float64") for s in stores[1:]]
        return np.column_stack(columns), own_column

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.full(len(frame), np.nan)
        for item in frame.item_id.unique():
            rows = (frame.item_id == item).to_numpy()
            if item not in self.coefficients:
                continue
            design, _ = self._design(frame[rows], item)
            out[rows] = design @ self.coefficients[item]
        return out


MAX_CATEGORIES = 255


@dataclass
class GradientBoosting:
    """scikit-learn's HistGradientBoostingRegressor with its defaults (untuned), random_state 0."""

    model: object = None
    item_ids: list[str] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)

    def _features(self, frame: pd.DataFrame) -> pd.DataFrame:
        table = pd.DataFrame(log_price_table(frame, self.item_ids), index=frame.index)
        table.columns = [f"log_price_{item}" for item in self.item_ids]
        for key in ("store_id", "item_id"):
            codes = pd.Categorical(frame[key], categories=self.categories[key])
            # the booster takes at most 255 categories; bigger vocabularies go in as codes
            table[key] = codes if len(codes.categories) <= MAX_CATEGORIES else codes.codes
        table["promo"] = frame.promo.to_numpy(dtype="float64")
        table["feature"] = frame.feature.to_numpy(dtype="float64")
        table["week_of_year"] = frame.event_timestamp.dt.isocalendar().week.to_numpy(
            dtype="float64"
        )
        return table

    def fit(self, frame: pd.DataFrame) -> GradientBoosting:
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.item_ids = sorted(frame.item_id.unique())
        self.categories = {k: sorted(frame[k].unique()) for k in ("store_id", "item_id")}
        self.model = HistGradientBoostingRegressor(
            random_state=0, categorical_features="from_dtype"
        )
        self.model.fit(self._features(frame), log_units(frame))  # type: ignore[attr-defined]
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict(self._features(frame))  # type: ignore[attr-defined]


@dataclass
class LastValue:
    """The last log units seen for the item in the store; the item's mean for a new store."""

    last: dict[tuple[str, str], float] = field(default_factory=dict)
    item_mean: dict[str, float] = field(default_factory=dict)

    def fit(self, frame: pd.DataFrame) -> LastValue:
        ordered = frame.assign(y=log_units(frame)).sort_values("event_timestamp")
        self.last = ordered.groupby(["item_id", "store_id"]).y.last().to_dict()
        self.item_mean = ordered.groupby("item_id").y.mean().to_dict()
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        keys = zip(frame.item_id, frame.store_id, strict=True)
        return np.array(
            [self.last.get((i, s), self.item_mean.get(i, np.nan)) for i, s in keys], dtype="float64"
        )


REFERENCES = {
    "(a) log-log per item, promo + ad": lambda: LogLog(),
    "(b) + store effects, cross prices": lambda: LogLog(store_effects=True, cross_prices=True),
    "(c) gradient boosting, untuned": lambda: GradientBoosting(),
    "(d) last value": lambda: LastValue(),
    "(e) (b) + lagged demand": lambda: LogLog(store_effects=True, cross_prices=True, lags=True),
}
