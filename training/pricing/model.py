"""The demand model: a hierarchical log-log regression in PyTorch, monotone in own price.

    log(1 + units) = a_i + a_s + a_is + v_i . z_s                        item x store level
                   + w_i . context                                       promotions, lags, season
                   + c_i . cross_log_prices                              other brands' prices
                   - softplus(e_i + e_is + u . z_s) * (log p - mean log p_i)

i is the item, s the store, z_s its standardised attributes. The own-price slope is minus a
softplus, so demand falls as the own price rises for every item, store and context: monotone by
construction, not by hope. d log(1 + q) / d log p is that slope; the own-price elasticity of q
is the slope x (1 + q) / q (`PricingEnsemble.elasticities`, by autograd).

w_i is the shared w plus item i's own deviation. Shops differ in shape (one product in 88
stores, 20 products in one store, 11 brands in 83 stores), and so does what their data can
carry: a `Structure` (STRUCTURES) scales the penalty of each group of terms (per-item context
weights pooled or not, store terms shrunk harder) and names the context inputs and cross prices
it reads. The structure and `l2` are chosen together on the valid weeks (train.py). Every
structure is this one model: the inputs it reads are the design's (`Design.context`,
`Design.cross`, saved in the checkpoint), so serving loads one checkpoint shape whatever won.

Why this model and not a network: on Dominick's validation weeks a residual MLP over the same
inputs made the holdout worse (0.56 vs 0.526 RMSE, `training/pricing/research/NOTES.md`); the
gains came from the inputs (last week's price, the competitors' deals) and from shrinking the
store-level terms towards the item's, which the L2 penalty `l2` does (tuned on validation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .design import CONTEXT, Design, Encoded


@dataclass(frozen=True)
class Structure:
    """What a fit may use: `penalty` multiplies the l2 of each group of terms (1 where not named;
    groups: "store" = store and item x store levels and store attributes, "context" = each
    item's deviation from the shared context weights, "shared" = the shared context weights
    (default multiplier: the number of items, `DemandModel.penalty`),
    "cross" = cross prices, "slope" = the item x store and attribute parts of the own-price
    slope); `context` the context inputs it reads; `cross` whether it reads cross prices."""

    penalty: dict[str, float] = field(default_factory=dict)
    context: tuple[str, ...] = CONTEXT
    cross: bool = True


STRUCTURES: dict[str, Structure] = {
    # every item its own context weights, shrunk as much as the rest (Dominick's 11 brands)
    "per-item": Structure(),
    # items share context weights: a few dozen weeks per item cannot carry 15 weights each
    "pooled": Structure({"context": 100.0}),
    # reference (a)'s inputs (promotion, ad) with store effects shrunk by l2: where demand
    # history and season are noise (a stable shop), every extra weight costs variance
    "lean": Structure(context=("promo", "feature"), cross=False),
    # reference (a) itself, store terms shrunk 100x harder: a shop whose stores differ in nothing
    "minimal": Structure({"store": 100.0, "slope": 100.0}, ("promo", "feature"), cross=False),
}


def check_structures(names: tuple[str, ...]) -> None:
    unknown = [n for n in names if n not in STRUCTURES]
    if unknown or not names:
        raise ValueError(
            f"pricing structures {unknown or '()'}: choose one or more of {list(STRUCTURES)}"
        )


@dataclass(frozen=True)
class PricingConfig:
    l2_grid: tuple[float, ...] = (10.0, 30.0, 100.0)  # tried on the valid weeks, best one kept
    # tried on the valid weeks: all at the grid's middle l2, the best two at the others
    structures: tuple[str, ...] = ("per-item", "pooled", "lean", "minimal")
    valid_folds: int = 3  # the valid weeks split in consecutive folds, each fit on what precedes
    members: int = 5  # bootstrap ensemble size: the elasticity's uncertainty
    max_iter: int = 300  # L-BFGS iterations per fit
    seed: int = 0

    def __post_init__(self) -> None:
        check_structures(tuple(self.structures))  # a setting naming none is refused at once

    def to_dict(self) -> dict[str, object]:
        values = asdict(self)
        values["l2_grid"] = list(self.l2_grid)
        values["structures"] = list(self.structures)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> PricingConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if "l2_grid" in known:
            known["l2_grid"] = tuple(float(v) for v in known["l2_grid"])  # type: ignore[union-attr]
        if "structures" in known:
            known["structures"] = tuple(str(v) for v in known["structures"])  # type: ignore[union-attr]
        return cls(**known)  # type: ignore[arg-type]


class DemandModel(nn.Module):
    def __init__(
        self,
        design: Design,
        base_log_units: torch.Tensor | None = None,
        structure: str = "per-item",
    ):
        super().__init__()
        check_structures((structure,))
        self.structure = structure
        n_items, n_stores = len(design.item_ids), len(design.store_ids)
        n_context, n_attributes = len(design.context), len(design.store_columns)
        self.n_stores = n_stores
        self.item_level = nn.Parameter(
            torch.zeros(n_items) if base_log_units is None else base_log_units.clone()
        )
        self.store_level = nn.Parameter(torch.zeros(n_stores))
        self.pair_level = nn.Parameter(torch.zeros(n_items * n_stores))
        self.attribute_level = nn.Parameter(torch.zeros(n_items, n_attributes))
        self.context_shared = nn.Parameter(torch.zeros(n_context))
        self.context_weights = nn.Parameter(torch.zeros(n_items, n_context))
        self.cross_weights = nn.Parameter(torch.zeros(n_items, n_items)) if design.cross else None
        # softplus(0.7) ~ 1.1: a start at unit elasticity, as uninformed as the data allow
        self.item_slope = nn.Parameter(torch.full((n_items,), 0.7))
        self.pair_slope = nn.Parameter(torch.zeros(n_items * n_stores))
        self.attribute_slope = nn.Parameter(torch.zeros(n_attributes))

    def slope(self, batch: Encoded) -> torch.Tensor:
        """The positive own-price coefficient: -d log(1 + units) / d log price, per row."""
        pair = batch.item * self.n_stores + batch.store
        raw = (
            self.item_slope[batch.item]
            + self.pair_slope[pair]
            + batch.stores @ self.attribute_slope
        )
        return F.softplus(raw)

    def forward(self, batch: Encoded) -> torch.Tensor:
        """Predicted log(1 + units) per row."""
        item, pair = batch.item, batch.item * self.n_stores + batch.store
        level = self.item_level[item] + self.store_level[batch.store] + self.pair_level[pair]
        level = level + (self.attribute_level[item] * batch.stores).sum(-1)
        weights = self.context_shared + self.context_weights[item]
        out = level + (weights * batch.context).sum(-1)
        if self.cross_weights is not None and batch.cross is not None:
            out = out + (self.cross_weights[item] * batch.cross).sum(-1)
        return out - self.slope(batch) * batch.log_price

    def groups(self) -> dict[str, list[nn.Parameter]]:
        """The penalised terms by group (STRUCTURES scales each)."""
        return {
            "store": [self.store_level, self.pair_level, self.attribute_level],
            "context": [self.context_weights],
            "shared": [self.context_shared],
            "cross": [] if self.cross_weights is None else [self.cross_weights],
            "slope": [self.pair_slope, self.attribute_slope],
        }

    def penalty(self) -> torch.Tensor:
        """Shrinks everything below the item's own level and slope towards zero, each group by
        the structure's multiplier. The shared context weights are read by every item's rows,
        so they cost as much as one weight per item (x n_items): penalised like the other
        terms, a shared weight on last week's price soaked up the own-price effect (prices
        persist) and, held fixed in a quote, left too flat a demand curve (40-item simulator:
        per-item slopes 13.9 % median elasticity error and 93.2 % of the oracle's profit; with
        the scaling 10.4 % and 97.1 %)."""
        scale = {"shared": float(len(self.item_level)), **STRUCTURES[self.structure].penalty}
        total = torch.zeros((), dtype=self.item_level.dtype, device=self.item_level.device)
        for group, terms in self.groups().items():
            total = total + scale.get(group, 1.0) * sum(t.pow(2).sum() for t in terms)
        return total
