"""Buy again: which items of a shopper's history the recommender may recommend again, and how it
scores them.

* The setting `recommender_buy_again` (off, all, or categories) is read once, at training, into
  `BuyAgain`; the model keeps it in its checkpoint, so serving answers as the model was trained
  and evaluated. `BuyAgain.rebuyable` is the one definition of which history items stay
  eligible: the model's answers, the training set's targets, the evaluation's masks, the gate's
  behavioural test and the performance check all ask it.
* "Bought" means "in the history": the online feature `user_history_fv` serves the distinct items
  a shopper touched (every event type), most recent first, and the model scores only what
  serving feeds it. In an order export every row is a purchase, so there the history is exactly
  the items bought; in a clickstream a viewed item counts too (telling them apart online would
  need a purchase-only feature view beside it).
* A rebuyable history item i at recency rank r (0: the most recently touched) scores

      weight * p_i * (1 + r) ** -decay  +  blend * s_i

  with p_i the share of the fit users holding i who touched it again in the validation window
  (shrunk towards the share over all items), s_i the item model's own score for i given the rest
  of the history, and weight, decay and blend chosen on validation NDCG@10 with repeats among the
  targets (`fit_repeat_scores`). New items keep the model's scores, standardised per user, so the
  weight says how far a likely rebuy outranks the best new item. On the grocery benchmark the
  model's score (blend) is what lifts Aisle past "most bought by this user": the served history
  holds no purchase counts, so recency and p_i alone tie it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from .dataset import RecommenderData
    from .predict import Recommender

OFF, ALL = "off", "all"
REASON = "you bought this before"
MOST_BOUGHT = "most bought by this user"  # the reference buy-again is held to
# Up to 4096: far above any new item's standardised score, i.e. "every rebuy first".
WEIGHTS = (1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0)
DECAYS = (0.0, 0.25, 0.5, 1.0)
BLENDS = (0.0, 0.1, 0.3, 1.0)
PRIOR_USERS = 10.0  # owners' worth of the overall repeat share each item's own share starts from


@dataclass(frozen=True)
class BuyAgain:
    """Which history items may be recommended again: none (off), all, or those of `categories`."""

    categories: tuple[str, ...] | None = ()  # (): off; None: every category

    @classmethod
    def parse(cls, setting: str | None) -> BuyAgain:
        value = (setting or OFF).strip()
        if value.lower() == OFF:
            return cls(())
        if value.lower() == ALL:
            return cls(None)
        categories = tuple(sorted({c.strip() for c in value.split(",") if c.strip()}))
        if not categories:
            raise ValueError(
                f"recommender_buy_again={setting!r}: say off, all, or categories separated by "
                "commas (e.g. 'dairy,produce')"
            )
        return cls(categories)

    @property
    def on(self) -> bool:
        return self.categories != ()

    @property
    def setting(self) -> str:
        return ALL if self.categories is None else ",".join(self.categories) or OFF

    def rebuyable(self, item: str, categories: Mapping[str, str]) -> bool:
        """May `item`, already in a shopper's history, be recommended to them again?"""
        if self.categories is None:
            return True
        return bool(self.categories) and categories.get(item) in self.categories

    def mask(self, item_ids: Sequence[str], categories: Mapping[str, str]) -> np.ndarray:
        """`rebuyable` over a vocabulary, as a bool array."""
        return np.array([self.rebuyable(i, categories) for i in item_ids], dtype=bool)

    def targets(
        self, touched: Iterable[str], history: Iterable[str], categories: Mapping[str, str]
    ) -> list[str]:
        """Protocol B's targets: the items touched in a window that are new to the history, and
        with buy-again on those of the history it allows again (first-touch order, distinct)."""
        known = set(history)
        return [
            i
            for i in dict.fromkeys(touched)
            if i not in known or (self.on and self.rebuyable(i, categories))
        ]


@dataclass(frozen=True)
class RepeatScores:
    """The scores of rebuyable history items (module docstring); `propensity` per item."""

    weight: float = 0.0
    decay: float = 0.0
    propensity: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    blend: float = 0.0

    def of(self, item: int, rank: int, own: float = 0.0) -> float:
        """Item index `item` at recency rank `rank` (0: the most recent) of one history, `own`
        the item model's score for it."""
        repeat = self.weight * self.propensity[item] * (1.0 + rank) ** -self.decay
        return float(repeat + self.blend * own)

    def apply(self, scores: np.ndarray, ranks: sp.csr_matrix, rebuyable: np.ndarray) -> np.ndarray:
        """`scores` (users x items) with each rebuyable history item's score replaced; `ranks`
        holds recency rank + 1 of every history item (0: not in the history)."""
        coo = ranks.tocoo()
        keep = rebuyable[coo.col]
        rows, cols, rank = coo.row[keep], coo.col[keep], coo.data[keep] - 1.0
        out = np.array(scores, dtype=np.float32, copy=True)
        repeat = self.weight * self.propensity[cols] * (1.0 + rank) ** -self.decay
        out[rows, cols] = repeat + self.blend * out[rows, cols]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight": self.weight,
            "decay": self.decay,
            "blend": self.blend,
            "propensity": self.propensity.tolist(),
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> RepeatScores:
        propensity = np.asarray(payload.get("propensity", []), dtype=np.float32)
        weight, decay = float(payload.get("weight", 0.0)), float(payload.get("decay", 0.0))
        return cls(weight, decay, propensity, float(payload.get("blend", 0.0)))


def masked(history: sp.spmatrix, rebuyable: np.ndarray) -> sp.csr_matrix:
    """The history items an evaluation ranks last: all of them but the rebuyable ones."""
    return sp.csr_matrix(sp.csr_matrix(history).multiply((~rebuyable)[None, :].astype(np.float32)))


def propensity(history: sp.spmatrix, targets: sp.spmatrix) -> np.ndarray:
    """Per item, the share of the users holding it who touched it again among `targets`, shrunk
    towards the share over all items by PRIOR_USERS (an item few users hold gets the overall)."""
    held = sp.csr_matrix(history) > 0
    again = held.multiply(sp.csr_matrix(targets) > 0)
    owners = np.asarray(held.sum(0), dtype=np.float64).ravel()
    repeats = np.asarray(again.sum(0), dtype=np.float64).ravel()
    overall = repeats.sum() / max(owners.sum(), 1.0)
    return ((repeats + PRIOR_USERS * overall) / (owners + PRIOR_USERS)).astype(np.float32)


def fit_repeat_scores(
    scores: np.ndarray, ranks: sp.csr_matrix, targets: sp.spmatrix, rebuyable: np.ndarray
) -> tuple[RepeatScores, dict[str, float]]:
    """Weight, decay and blend by validation NDCG@10: `scores` the model's for the fit users,
    `ranks` their history's recency ranks + 1, `targets` their validation targets, repeats
    included. Returns the chosen scores and their validation metrics."""
    from .evaluate import ranking_metrics

    p = propensity(ranks, targets)
    hidden = masked(ranks, rebuyable)
    best: tuple[RepeatScores, dict[str, float]] | None = None
    for weight, decay, blend in product(WEIGHTS, DECAYS, BLENDS):
        candidate = RepeatScores(weight, decay, p, blend)
        metrics = ranking_metrics(candidate.apply(scores, ranks, rebuyable), hidden, targets)
        if best is None or metrics["ndcg@10"] > best[1]["ndcg@10"]:
            best = (candidate, metrics)
    assert best is not None
    return best


def most_bought_scores(
    bought: sp.csr_matrix, popularity: np.ndarray, rebuyable: np.ndarray
) -> np.ndarray:
    """The "most bought by this user" reference: the user's rebuyable purchases by count (counts
    are whole numbers >= 1), then every other item by popularity (scaled below 1)."""
    base = np.asarray(popularity, dtype=np.float32) / (float(np.max(popularity, initial=0)) + 1.0)
    counts = sp.csr_matrix(bought).multiply(rebuyable[None, :].astype(np.float32))
    return np.asarray(counts.toarray() + base[None, :], dtype=np.float32)


def from_metadata(metadata: Mapping[str, Any]) -> tuple[BuyAgain, RepeatScores]:
    """The setting and repeat scores a checkpoint was trained with (off when it has none)."""
    recorded = metadata.get("buy_again") or {}
    return BuyAgain.parse(recorded.get("setting")), RepeatScores.from_dict(recorded)


def rebuys(
    policy: BuyAgain,
    repeat: RepeatScores,
    history: Sequence[str],
    index: Mapping[str, int],
    categories: Mapping[str, str],
    own: np.ndarray | None = None,
) -> dict[int, float]:
    """Item index -> repeat score for the rebuyable items of one request's `history` (most
    recent first, as the online store serves it); `own`: the item model's scores for it."""
    if not policy.on or not len(repeat.propensity):
        return {}
    out: dict[int, float] = {}
    for rank, item in enumerate(dict.fromkeys(history)):
        if item in index and policy.rebuyable(item, categories):
            n = index[item]
            out[n] = repeat.of(n, rank, 0.0 if own is None else float(own[n]))
    return out


def fit_buy_again(
    data: RecommenderData, policy: BuyAgain, recommender: Recommender
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """With buy-again on: the repeat scores chosen on the validation window, recorded on the
    `recommender` (its metadata and its answers), and the test metrics of it and of the
    references (popularity, "most bought by this user") with the allowed repeats among the
    targets. `data` is a RecommenderData from a training set that holds repeats."""
    from .baselines import Popularity
    from .evaluate import ranking_metrics

    rebuyable = policy.mask(data.item_ids, data.metadata.get("categories", {}))
    valid = data.with_repeats(data.valid, data.valid_repeats, rebuyable)
    test = data.with_repeats(data.test_targets, data.test_repeats, rebuyable)
    repeat, valid_metrics = fit_repeat_scores(
        model_scores(recommender, data.train), data.fit_ranks, valid, rebuyable
    )
    hidden = masked(data.test_history, rebuyable)
    ours = repeat.apply(model_scores(recommender, data.test_history), data.test_ranks, rebuyable)
    metrics = ranking_metrics(ours, hidden, test)
    popularity = Popularity().fit(data.train).scores(data.test_history)
    bought = most_bought_scores(data.test_bought, data.popularity(), rebuyable)
    references = {
        "popularity": ranking_metrics(popularity, hidden, test),
        MOST_BOUGHT: ranking_metrics(bought, hidden, test),
    }
    recommender.use_buy_again(policy, repeat)
    recommender.metadata["metrics"] = {"test": metrics, "valid": valid_metrics}
    return metrics, references


def model_scores(recommender: Recommender, history: sp.spmatrix) -> np.ndarray:
    """The model's scores (users x items) for history rows, before any repeat score."""
    import torch

    from .train import score_all

    rows = torch.as_tensor(sp.csr_matrix(history).toarray(), dtype=torch.float32)
    return score_all(recommender.model, rows.to(recommender.device)).cpu().numpy()
