"""From a pricing_v1 training frame to the tensors the demand model reads.

A `Design` is fitted on the rows a model trains on and saved in its checkpoint, so serving
encodes a row exactly as training did. It holds the item and store vocabularies, each item's
mean log price (own and cross prices enter centred on it: the intercept is demand at a typical
price), the fill values for a week without history, and the scaling of the context and store
attributes.

What the model sees of a row (all from the feature service, point-in-time):
* `log_price`: the item's own log price, centred. Only the monotone price term reads it.
* `cross`: the log prices of the other items of its category that week (Dominick's 11 brands),
  centred per item; absent when no category is small enough to list (`MAX_LISTED`).
* `context`: promotion and ad flags, the competitors' promotion share and ad intensity, the mean
  competitor log price, last week's log units and price, the 4-week means of log units and
  price, the weeks sold of the last four, and two seasonal harmonics. (The 4-week promotion
  share made rolling validation worse on Dominick's and is left out.) None of it is the own
  price of the week, so demand falls with price whatever the context does.
* `stores`: the store's numeric attributes, standardised (text attributes are not used).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

CONTEXT = (
    "promo",
    "feature",
    "competitor_promo_share",
    "competitor_feature_mean",
    "log_competitor_price",
    "log_units_lag1",
    "log_units_mean_4w",
    "history_missing",
    "log_price_lag1",
    "log_price_mean_4w",
    "weeks_sold_4w",
    "season_sin1",
    "season_cos1",
    "season_sin2",
    "season_cos2",
)
YEAR_DAYS = 365.25


class UnknownEntity(ValueError):
    """An item or store the model was not trained on. `.field` is `item_id` or `store_id`."""

    def __init__(self, field: str, ids: list[str]):
        self.field = field
        self.ids = ids
        shown = ", ".join(map(repr, ids[:5])) + (" ..." if len(ids) > 5 else "")
        super().__init__(f"{field}: unknown to the model ({len(ids)}): {shown}")


class BadFeatures(ValueError):
    """A row whose features cannot be priced (a missing, NaN or non-positive price)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass
class Encoded:
    """One batch of rows as tensors; `keep` marks the frame rows it holds."""

    item: torch.Tensor
    store: torch.Tensor
    log_price: torch.Tensor
    context: torch.Tensor
    stores: torch.Tensor
    cross: torch.Tensor | None
    target: torch.Tensor | None
    keep: np.ndarray

    def __len__(self) -> int:
        return len(self.item)

    def to(self, device: torch.device | str) -> Encoded:
        moved = {
            k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in vars(self).items()
        }
        return Encoded(**moved)

    def take(self, index: torch.Tensor) -> Encoded:
        taken = {k: (v[index] if isinstance(v, torch.Tensor) else v) for k, v in vars(self).items()}
        taken["keep"] = self.keep
        return Encoded(**taken)


@dataclass
class Design:
    item_ids: list[str]
    store_ids: list[str]
    price_center: list[float]  # per item: mean log price
    competitor_center: list[float]  # per item: mean log competitor price
    item_log_units: list[float]  # per item: mean log units, the last-resort history fill
    store_columns: list[str]
    store_mean: list[float]
    store_std: list[float]
    context_mean: list[float]
    context_std: list[float]
    cross: bool
    context: list[str] = field(default_factory=lambda: list(CONTEXT))

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, context: tuple[str, ...] = CONTEXT, cross: bool = True
    ) -> Design:
        """The design of `frame`'s rows; `context` names the context inputs the model reads and
        `cross=False` leaves cross prices out (a structure's choice, model.STRUCTURES)."""
        check_prices(frame)
        item_ids = sorted(frame.item_id.unique())
        store_ids = sorted(frame.store_id.unique())
        by_item = frame.assign(
            lp=np.log(frame.price),
            lc=np.log(frame.competitor_price_mean),
            ly=np.log1p(frame.units) if "units" in frame else np.nan,
        ).groupby("item_id")
        store_columns = sorted(
            c
            for c in frame.columns
            if c.startswith("store_")
            and c != "store_id"
            and pd.api.types.is_numeric_dtype(frame[c])
        )
        stores = frame.drop_duplicates("store_id")[store_columns].astype("float64")
        design = cls(
            item_ids=item_ids,
            store_ids=store_ids,
            price_center=by_item.lp.mean().reindex(item_ids).tolist(),
            competitor_center=by_item.lc.mean().reindex(item_ids).fillna(0.0).tolist(),
            item_log_units=by_item.ly.mean().reindex(item_ids).fillna(0.0).tolist(),
            store_columns=store_columns,
            store_mean=stores.mean().fillna(0.0).tolist(),
            store_std=stores.std(ddof=0).fillna(1.0).replace(0.0, 1.0).tolist(),
            context_mean=[0.0] * len(context),
            context_std=[1.0] * len(context),
            cross=cross and bool(frame.category_item_ids.map(_listed).max()),
            context=list(context),
        )
        raw = design._context(frame, np.searchsorted(item_ids, frame.item_id))
        design.context_mean = raw.mean(0).tolist()
        design.context_std = np.where(raw.std(0) > 0, raw.std(0), 1.0).tolist()
        return design

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Design:
        return cls(**data)

    def encode(
        self,
        frame: pd.DataFrame,
        unknown: Literal["error", "drop"] = "error",
        dtype: torch.dtype = torch.float64,
    ) -> Encoded:
        """The rows of `frame` as tensors. Unknown items or stores raise `UnknownEntity`, or with
        unknown="drop" are left out (`keep` says which rows stayed)."""
        check_prices(frame)
        keep = np.ones(len(frame), dtype=bool)
        for column, vocabulary in (("item_id", self.item_ids), ("store_id", self.store_ids)):
            known = frame[column].isin(vocabulary).to_numpy()
            if not known.all() and unknown == "error":
                raise UnknownEntity(column, sorted(set(frame[column][~known])))
            keep &= known
        rows = frame[keep]
        item = np.searchsorted(self.item_ids, rows.item_id.to_numpy())
        store = np.searchsorted(self.store_ids, rows.store_id.to_numpy())
        center = np.asarray(self.price_center)
        context = (self._context(rows, item) - self.context_mean) / self.context_std
        attributes = rows.reindex(columns=self.store_columns).to_numpy(dtype="float64")
        attributes = np.nan_to_num((attributes - self.store_mean) / self.store_std)
        target = np.log1p(rows.units.to_numpy(dtype="float64")) if "units" in rows else None

        def tensor(values: np.ndarray, kind: torch.dtype = dtype) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(values), dtype=kind)

        return Encoded(
            item=tensor(item, torch.long),
            store=tensor(store, torch.long),
            log_price=tensor(np.log(rows.price.to_numpy(dtype="float64")) - center[item]),
            context=tensor(context),
            stores=tensor(attributes),
            cross=tensor(self._cross(rows, item)) if self.cross else None,
            target=None if target is None else tensor(target),
            keep=keep,
        )

    def _context(self, rows: pd.DataFrame, item: np.ndarray) -> np.ndarray:
        center = np.asarray(self.price_center)[item]
        fallback_units = np.asarray(self.item_log_units)[item]
        mean_4w = rows.log_units_mean_4w.to_numpy(dtype="float64")
        lag1 = rows.log_units_lag1.to_numpy(dtype="float64")
        missing = np.isnan(lag1)
        mean_4w_filled = np.where(np.isnan(mean_4w), fallback_units, mean_4w)
        log_mean_price = np.log(rows.price_mean_4w.to_numpy(dtype="float64")) - center
        log_lag_price = np.log(rows.price_lag1.to_numpy(dtype="float64")) - center
        log_mean_price = np.nan_to_num(log_mean_price)
        competitor = np.log(rows.competitor_price_mean.to_numpy(dtype="float64"))
        competitor -= np.asarray(self.competitor_center)[item]
        day = rows.event_timestamp.dt.dayofyear.to_numpy(dtype="float64")
        angle = 2 * np.pi * day / YEAR_DAYS
        columns = {
            "promo": rows.promo.to_numpy(dtype="float64"),
            "feature": rows.feature.to_numpy(dtype="float64"),
            "competitor_promo_share": rows.competitor_promo_share.to_numpy(dtype="float64"),
            "competitor_feature_mean": rows.competitor_feature_mean.to_numpy(dtype="float64"),
            "log_competitor_price": competitor,
            "log_units_lag1": np.where(missing, mean_4w_filled, lag1),
            "log_units_mean_4w": mean_4w_filled,
            "history_missing": missing.astype("float64"),
            "log_price_lag1": np.where(np.isnan(log_lag_price), log_mean_price, log_lag_price),
            "log_price_mean_4w": log_mean_price,
            "weeks_sold_4w": rows.weeks_sold_4w.to_numpy(dtype="float64"),
            "season_sin1": np.sin(angle),
            "season_cos1": np.cos(angle),
            "season_sin2": np.sin(2 * angle),
            "season_cos2": np.cos(2 * angle),
        }
        return np.nan_to_num(np.column_stack([columns[name] for name in self.context]))

    def _cross(self, rows: pd.DataFrame, item: np.ndarray) -> np.ndarray:
        """(rows, items): each listed competitor's centred log price; 0 for self and unlisted."""
        center = np.asarray(self.price_center)
        out = np.zeros((len(rows), len(self.item_ids)))
        index = {item_id: n for n, item_id in enumerate(self.item_ids)}
        lists = zip(rows.category_item_ids, rows.category_prices, strict=True)
        for r, (ids, prices) in enumerate(lists):
            if not _listed(ids):
                continue
            for other, price in zip(ids, prices, strict=True):
                j = index.get(other)
                if j is not None and j != item[r] and price is not None and price > 0:
                    out[r, j] = np.log(price) - center[j]
        return out


def _listed(ids: Any) -> bool:
    return ids is not None and not (isinstance(ids, float) and np.isnan(ids)) and len(ids) > 1


def check_prices(frame: pd.DataFrame) -> None:
    """A row without a positive, finite own price cannot be encoded: name the field."""
    if "price" not in frame:
        raise BadFeatures("price", "the row has no price (are the item_price features there?)")
    price = pd.to_numeric(frame["price"], errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isfinite(price) | (price <= 0)
    if bad.any():
        where = frame.index[bad][:5].tolist()
        raise BadFeatures(
            "price", f"must be a positive number; {int(bad.sum())} row(s) are not, e.g. {where}"
        )
