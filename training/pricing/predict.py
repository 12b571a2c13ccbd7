"""The trained pricing model: forecasts, elasticities by autograd, and guard-railed quotes.

    model = PricingModel.load(path)
    model.predict(frame)        log(1 + units) per row: ensemble mean and spread
    model.elasticities(frame)   own-price elasticity d log q / d log p per row, mean and spread
    model.demand(row, prices)   expected units of one row's item/store/week at other prices
    model.quote(row, cost=..., guardrails=...)   the optimiser's price with all of the above

A row is what the `pricing_v1` feature service returns for an item and store (training sets and
the online store give the same columns). The checkpoint is one `torch.save` file holding the
design, every member's weights, the config and metadata; it loads with `weights_only=True`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .design import BadFeatures, Design, Encoded
from .model import DemandModel, PricingConfig
from .quoting import Guardrails, PriceDecision, optimise_price

FORMAT = "aisle-pricing/1"


@dataclass(frozen=True)
class Quote:
    item_id: str
    store_id: str
    decision: PriceDecision
    elasticity_std: float  # spread of the ensemble's elasticity at the chosen price

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "store_id": self.store_id,
            **self.decision.to_dict(),
            "elasticity_std": self.elasticity_std,
        }


class PricingModel:
    def __init__(
        self,
        design: Design,
        members: list[DemandModel],
        config: PricingConfig,
        metadata: dict[str, Any] | None = None,
    ):
        if not members:
            raise ValueError("a pricing model needs at least one fitted member")
        self.design = design
        self.members = [m.eval() for m in members]
        self.config = config
        self.metadata = metadata or {}

    # -- forecasts -------------------------------------------------------------------------
    def _batch(self, frame: pd.DataFrame, unknown: str) -> Encoded:
        dtype = self.members[0].item_slope.dtype
        return self.design.encode(frame, unknown=unknown, dtype=dtype)  # type: ignore[arg-type]

    def predict(self, frame: pd.DataFrame, unknown: str = "error") -> pd.DataFrame:
        """Forecast log(1 + units) per row (rows with unknown ids dropped when unknown="drop")."""
        batch = self._batch(frame, unknown)
        with torch.no_grad():
            outputs = torch.stack([m(batch) for m in self.members]).numpy()
        mean = outputs.mean(0)
        return pd.DataFrame(
            {
                "log_units": mean,
                "log_units_std": outputs.std(0),
                "units": np.expm1(mean).clip(min=0),
            },
            index=frame.index[batch.keep],
        )

    def elasticities(self, frame: pd.DataFrame, unknown: str = "error") -> pd.DataFrame:
        """Own-price elasticity of units, d log q / d log p, per row and ensemble member by
        autograd (d log(1+q)/d log p x (1+q)/q), then the members' mean and standard deviation.
        `cross_<item>` columns hold the mean cross-price elasticities where the data list them."""
        batch = self._batch(frame, unknown)
        own, cross = [], []
        for member in self.members:
            log_price = batch.log_price.detach().clone().requires_grad_(True)
            inputs = [log_price]
            cross_prices = None
            if batch.cross is not None:
                cross_prices = batch.cross.detach().clone().requires_grad_(True)
                inputs.append(cross_prices)
            varied = Encoded(**{**vars(batch), "log_price": log_price, "cross": cross_prices})
            log_units = member(varied)
            grads = torch.autograd.grad(log_units.sum(), inputs)
            units = torch.expm1(log_units.detach()).clamp(min=1e-6)
            scale = (1 + units) / units
            own.append((grads[0] * scale).numpy())
            if cross_prices is not None:
                cross.append((grads[1] * scale[:, None]).numpy())
        own_array = np.stack(own)
        out = pd.DataFrame(
            {
                "item_id": frame.item_id.to_numpy()[batch.keep],
                "store_id": frame.store_id.to_numpy()[batch.keep],
                "elasticity": own_array.mean(0),
                "elasticity_std": own_array.std(0),
            },
            index=frame.index[batch.keep],
        )
        if cross:
            mean_cross = np.stack(cross).mean(0)
            for j, other in enumerate(self.design.item_ids):
                out[f"cross_{other}"] = mean_cross[:, j]
        return out

    def demand(self, row: pd.DataFrame, prices: np.ndarray) -> np.ndarray:
        """Expected units of the single row's item/store/week at each of `prices`."""
        units, _ = self._curve(row, prices)
        return units

    def _curve(
        self, row: pd.DataFrame, prices: np.ndarray, batch: Encoded | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Units (ensemble mean) and each member's units at `prices`, for one row (`batch`: the
        row already encoded, as a quote's repeated calls pass it)."""
        if len(row) != 1:
            raise ValueError(f"a demand curve is for one row, got {len(row)}")
        prices = np.asarray(prices, dtype="float64")
        if not np.isfinite(prices).all() or (prices <= 0).any():
            raise BadFeatures("price", "candidate prices must be positive numbers")
        batch = batch if batch is not None else self._batch(row, "error")
        n = len(prices)
        center = self.design.price_center[int(batch.item[0])]
        repeated = batch.take(torch.zeros(n, dtype=torch.long))
        repeated.log_price = torch.as_tensor(np.log(prices) - center, dtype=batch.log_price.dtype)
        with torch.no_grad():
            per_member = torch.stack([torch.expm1(m(repeated)) for m in self.members])
        per_member = per_member.clamp(min=0).numpy()
        return per_member.mean(0), per_member

    def quote(
        self,
        row: pd.DataFrame,
        cost: float | None,
        guardrails: Guardrails | None = None,
        current_price: float | None = None,
    ) -> Quote:
        """The profit- (or revenue-) maximising price for the row's item and store that every
        guardrail allows; `current_price` defaults to the row's shelf price."""
        if len(row) != 1:
            raise ValueError(f"a quote is for one item in one store, got {len(row)} rows")
        batch = self._batch(row, "error")  # unknown ids, bad prices: named before anything else
        if current_price is None:
            current_price = float(row["price"].iloc[0])

        decision = optimise_price(
            lambda prices: self._curve(row, prices, batch)[0],  # encoded once per quote
            cost=cost,  # type: ignore[arg-type]
            guardrails=guardrails,
            current_price=current_price,
        )
        frame = row.assign(price=decision.price)
        elasticity = self.elasticities(frame)
        decision = _with_elasticity(decision, float(elasticity.elasticity.iloc[0]))
        return Quote(
            str(row.item_id.iloc[0]),
            str(row.store_id.iloc[0]),
            decision,
            float(elasticity.elasticity_std.iloc[0]),
        )

    # -- checkpoint ------------------------------------------------------------------------
    def save(self, path: Path | str, metadata: dict[str, Any] | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if metadata is not None:
            self.metadata = metadata
        payload = {
            "format": FORMAT,
            "design": self.design.to_dict(),
            "config": self.config.to_dict(),
            "members": [m.state_dict() for m in self.members],
            "metadata": self.metadata,
        }
        partial = path.with_suffix(path.suffix + ".partial")
        torch.save(payload, partial)
        partial.replace(path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> PricingModel:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a pricing checkpoint ({FORMAT})")
        design = Design.from_dict(payload["design"])
        members = []
        for state in payload["members"]:
            member = DemandModel(design).to(dtype=state["item_slope"].dtype)
            # checkpoints from before the shared context weights: theirs are all per item
            state.setdefault("context_shared", torch.zeros_like(member.context_shared))
            member.load_state_dict(state)
            members.append(member)
        return cls(design, members, PricingConfig.from_dict(payload["config"]), payload["metadata"])


def _with_elasticity(decision: PriceDecision, elasticity: float) -> PriceDecision:
    return replace(decision, elasticity=elasticity)
