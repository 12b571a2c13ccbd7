"""Inference: a user's history (+ optional context) -> top-k items with scores and reasons.

`Recommender` wraps a trained model with what serving needs beside it: the item vocabulary, the
popularity ranking for cold start, item categories for filters. It is saved as one
self-describing checkpoint (config, weights, vocabulary, metrics, lineage) and loads with
`torch.load(weights_only=True)`: no pickled code.

Every request gets a result, never an exception, unless the request itself is malformed
(`BadRequest`: k < 1, ids that are not strings):

* no usable history (unknown user, empty history, only unknown items) -> the popularity
  ranking, `fallback=True` with the reason;
* `k` beyond the items left -> all of them, and a note;
* a category nobody sells -> no items, and a note saying so;
* a current item (the page the shopper is on) counts as part of the history and is never
  recommended back;
* history items are never recommended, unless the checkpoint was trained with buy-again on
  (buy_again.py): then the items its setting allows rank by their repeat score beside the new
  items, with the reason "you bought this before".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .buy_again import REASON, BuyAgain, RepeatScores, from_metadata, rebuys
from .model import ItemAutoencoder, RecommenderConfig

CHECKPOINT_FORMAT = "aisle-recommender/1"


class BadRequest(ValueError):
    """The request cannot be answered as asked (serving turns this into a 422)."""


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float
    reason: str
    because_of: str | None = None  # the history item behind the reason, if any
    name: str | None = None  # the item's display name, where the items snapshot has one


@dataclass(frozen=True)
class Recommendations:
    items: list[ScoredItem]
    fallback: bool = False
    fallback_reason: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def item_ids(self) -> list[str]:
        return [i.item_id for i in self.items]


@dataclass(frozen=True)
class Request:
    history: Sequence[str] | None
    k: int = 10
    current_item: str | None = None
    category: str | None = None


class Recommender:
    def __init__(
        self,
        model: ItemAutoencoder,
        item_ids: list[str],
        popularity: np.ndarray,
        categories: dict[str, str] | None = None,
        metadata: dict | None = None,
    ) -> None:
        if len(item_ids) != model.n_items or len(popularity) != model.n_items:
            raise ValueError("vocabulary, popularity and model disagree on the number of items")
        self.model = model.eval()
        self.item_ids = list(item_ids)
        self.index = {item: n for n, item in enumerate(self.item_ids)}
        self.popularity = torch.as_tensor(np.asarray(popularity, dtype=np.float32))
        self.categories = dict(categories or {})
        self.metadata = dict(metadata or {})
        self._in_category: dict[str, torch.Tensor] = {}
        self.buy_again, self.repeat = from_metadata(self.metadata)
        self.item_names: dict[str, str] = {}

    @property
    def device(self) -> torch.device:
        return self.model.weights.device

    def with_item_names(self, names: dict[str, str]) -> Recommender:
        """Name items in answers and reasons (ids stay in their own fields); in the checkpoint."""
        self.item_names = {i: n for i, n in names.items() if i in self.index and n}
        return self

    def use_buy_again(self, policy: BuyAgain, repeat: RepeatScores) -> Recommender:
        """Answer with rebuys as `policy` allows, scored by `repeat`; kept in the checkpoint."""
        self.buy_again, self.repeat = policy, repeat
        self.metadata["buy_again"] = {"setting": policy.setting, **repeat.to_dict()}
        return self

    # ---- checkpoint -------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        from core.files import atomic_path

        payload = {
            "format": CHECKPOINT_FORMAT,
            "config": self.model.config.to_dict(),
            "state_dict": {k: v.cpu() for k, v in self.model.state_dict().items()},
            "item_ids": self.item_ids,
            "popularity": self.popularity,
            "categories": self.categories,
            "item_names": self.item_names,
            "metadata": self.metadata,
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    def to(self, device: str) -> Recommender:
        self.model.to(device)
        return self

    @classmethod
    def load(cls, path: Path | str, device: str | None = None) -> Recommender:
        from .train import pick_device

        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not an Aisle recommender checkpoint")
        return cls.from_payload(payload).to(str(pick_device(device)))

    @classmethod
    def from_payload(cls, payload: dict) -> Recommender:
        config = RecommenderConfig(**payload["config"])
        model = ItemAutoencoder(len(payload["item_ids"]), config)
        model.load_state_dict(payload["state_dict"])
        return cls(
            model,
            payload["item_ids"],
            payload["popularity"].numpy(),
            payload["categories"],
            payload["metadata"],
        ).with_item_names(payload.get("item_names", {}))  # none in older checkpoints

    # ---- inference --------------------------------------------------------------------------
    def recommend(
        self,
        history: Sequence[str] | None,
        k: int = 10,
        current_item: str | None = None,
        category: str | None = None,
    ) -> Recommendations:
        return self.recommend_batch([Request(history, k, current_item, category)])[0]

    @torch.no_grad()
    def recommend_batch(self, requests: Sequence[Request]) -> list[Recommendations]:
        """One forward pass for all requests with a usable history."""
        for request in requests:
            check_request(request)
        rows = [self._history_row(r) for r in requests]
        personal = [n for n, (indices, _) in enumerate(rows) if indices]
        scores: dict[int, torch.Tensor] = {}
        if personal:
            batch = torch.zeros((len(personal), len(self.item_ids)), device=self.device)
            for b, n in enumerate(personal):
                batch[b, rows[n][0]] = 1.0
            for b, score in enumerate(self.model(batch)):
                scores[personal[b]] = score
        names = self.item_names
        return [
            named(self._answer(request, indices, unknown, scores.get(n), n in scores), names)
            for n, (request, (indices, unknown)) in enumerate(zip(requests, rows, strict=True))
        ]

    def _history_row(self, request: Request) -> tuple[list[int], int]:
        items = list(request.history or [])
        if request.current_item is not None:
            items.append(request.current_item)
        indices = sorted({self.index[i] for i in items if i in self.index})
        return indices, sum(1 for i in items if i not in self.index)

    def _answer(
        self,
        request: Request,
        history: list[int],
        unknown: int,
        score: torch.Tensor | None,
        personal: bool,
    ) -> Recommendations:
        notes = []
        if unknown:
            notes.append(f"{unknown} history item(s) unknown to this model version were ignored")
        allowed = torch.ones(len(self.item_ids), dtype=torch.bool)
        allowed[history] = False
        own = None if score is None else score.cpu().numpy()  # the model's, before any mask
        rebuy = rebuys(
            self.buy_again, self.repeat, request.history or [], self.index, self.categories, own
        )
        rebuy.pop(self.index.get(request.current_item, -1), None)  # the page they are on
        if rebuy:
            allowed[list(rebuy)] = True
        if request.category is not None:
            in_category = self._category_mask(request.category)
            if not in_category.any():
                notes.append(f"no item in category {request.category!r}; nothing to recommend")
            allowed &= in_category
        if score is None:
            score = self.popularity.to(self.device)
        score = score.cpu().masked_fill(~allowed, float("-inf"))
        if rebuy:
            score[list(rebuy)] = torch.tensor(list(rebuy.values()), dtype=score.dtype)
            score = score.masked_fill(~allowed, float("-inf"))  # a category filter holds
        available = int(allowed.sum())
        k = min(request.k, available)
        if request.k > available and available > 0:
            notes.append(f"only {available} item(s) left to recommend; k={request.k} capped")
        top = torch.topk(score, k) if k else None
        items = [] if top is None else self._explain(history, top, personal, rebuy)
        if personal:
            return Recommendations(items, notes=notes)
        return Recommendations(
            items, fallback=True, fallback_reason=fallback_reason(request), notes=notes
        )

    def _explain(
        self, history: list[int], top, personal: bool, rebuy: dict[int, float]
    ) -> list[ScoredItem]:
        indices = top.indices.tolist()
        values = top.values.tolist()
        if not personal:
            return [
                ScoredItem(self.item_ids[i], float(v), "popular with shoppers")
                for i, v in zip(indices, values, strict=True)
            ]
        # The learned item-item weight from each history item to the recommendation: the item
        # that contributes most to its score is the reason.
        weights = self.model.weights.detach()[history][:, indices].cpu()
        strongest = weights.argmax(0).tolist()
        out = []
        for i, v, s in zip(indices, values, strongest, strict=True):
            if i in rebuy:  # the item itself is the reason
                out.append(ScoredItem(self.item_ids[i], float(v), REASON, self.item_ids[i]))
                continue
            source = self.item_ids[history[s]]
            reason = viewed_reason(source, self.item_names)
            out.append(ScoredItem(self.item_ids[i], float(v), reason, source))
        return out

    def _category_mask(self, category: str) -> torch.Tensor:
        if category not in self._in_category:
            self._in_category[category] = torch.tensor(
                [self.categories.get(i) == category for i in self.item_ids], dtype=torch.bool
            )
        return self._in_category[category]


def viewed_reason(item_id: str, names: Mapping[str, str]) -> str:
    """ "because you viewed Star Wars (1977)": the history item by its name, by its id where the
    items snapshot gave none (the id itself is the answer's `because_of`)."""
    return f"because you viewed {names.get(item_id) or item_id}"


def named(answer: Recommendations, names: Mapping[str, str]) -> Recommendations:
    """`answer` with each item's display name beside its id (None where it has none)."""
    if not names:
        return answer
    items = [replace(item, name=names.get(item.item_id)) for item in answer.items]
    return replace(answer, items=items)


def fallback_reason(request: Request) -> str:
    """Why a request with no known item in its history gets the popularity list."""
    return "no history yet" if not request.history else "no known item in the history"


def check_request(request: Request) -> None:
    """BadRequest for a malformed request (k < 1, ids that are not strings)."""
    if not isinstance(request.k, int) or isinstance(request.k, bool) or request.k < 1:
        raise BadRequest(f"k must be a positive integer, got {request.k!r}")
    history = request.history
    if history is not None and (
        isinstance(history, str) or not all(isinstance(i, str) for i in history)
    ):
        raise BadRequest("history must be a list of item id strings")
    for name in ("current_item", "category"):
        value = getattr(request, name)
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"{name} must be a string, got {type(value).__name__}")


def load_checkpoint(path: Path | str, device: str | None = None):
    """The recommender in a checkpoint, whichever form it was saved in: the item autoencoder
    (`Recommender`) or its factor search for large catalogues (`factors.FactorRecommender`)."""
    from .factors import FACTORS_FORMAT, FactorRecommender
    from .train import pick_device

    payload = torch.load(path, map_location="cpu", weights_only=True)
    forms = {CHECKPOINT_FORMAT: Recommender, FACTORS_FORMAT: FactorRecommender}
    form = forms.get(payload.get("format") if isinstance(payload, dict) else None)
    if form is None:
        raise ValueError(f"{path} is not an Aisle recommender checkpoint")
    return form.from_payload(payload).to(str(pick_device(device)))
