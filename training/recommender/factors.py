"""The recommender for large catalogues: the model's spectral term as an inner-product search.

The served `ItemAutoencoder` keeps an items x items weight matrix: 11 MB at 1,682 items, 40 GB
at 100,000 and 4 TB at 1,000,000, so it cannot serve a large shop. Its low-pass term scales:

    x D^-1/2 V V^T D^1/2  =  (x P) Q^T,   P = D^-1/2 V,  Q = D^1/2 V   (items x rank each)

with V the top right singular vectors of R = D_u^-1/2 X D_i^-1/2 (model.py). A history maps to a
`rank`-dim query (the sum of its items' rows of P) and recommending is a top-k inner-product
search over Q: exact (one matmul + top-k), or through a faiss IVF index (ann.py) whose `nprobe`
is the smallest reaching recall@10 >= 0.95 against exact on held-out users' histories at fit
time.

`FactorRecommender` answers exactly as `Recommender` does (predict.py): same requests, same
fallbacks and notes, a reason per item ("because you viewed X", X the history item whose factor
matches best). The checkpoint holds the factors and the serialised index, so a slot does not
rebuild it at start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .ann import FactorIndex
from .predict import (
    Recommendations,
    Request,
    ScoredItem,
    check_request,
    fallback_reason,
    named,
    viewed_reason,
)

log = logging.getLogger(__name__)
FACTORS_FORMAT = "aisle-recommender-factors/1"
SearchMode = Literal["exact", "ivf"]
TARGET_RECALL = 0.95
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class FactorConfig:
    rank: int = 64
    svd_iterations: int = 15  # power iterations of the randomised SVD (4 left ~14% of top-10s off)
    ivf_min_items: int = 50_000  # below this, exact search is as fast as the index
    ivf_head_share: float = 0.01  # highest-norm items scored exactly beside the index (ann.py)
    ivf_min_head: int = 1000
    seed: int = 2020


class FactorRecommender:
    def __init__(
        self,
        user_side: np.ndarray,
        item_side: np.ndarray,
        item_ids: list[str],
        popularity: np.ndarray,
        categories: dict[str, str] | None = None,
        metadata: dict | None = None,
        ann: FactorIndex | None = None,
    ) -> None:
        n = len(item_ids)
        if user_side.shape[0] != n or item_side.shape != user_side.shape or len(popularity) != n:
            raise ValueError("factors, vocabulary and popularity disagree on the number of items")
        self.user_side = torch.as_tensor(np.ascontiguousarray(user_side, dtype=np.float32))
        self.item_side = torch.as_tensor(np.ascontiguousarray(item_side, dtype=np.float32))
        self.item_ids = list(item_ids)
        self.index = {item: i for i, item in enumerate(self.item_ids)}
        self.popularity = torch.as_tensor(np.asarray(popularity, dtype=np.float32))
        self.categories = dict(categories or {})
        self.metadata = dict(metadata or {})
        self.ann = ann
        self.search: SearchMode = "ivf" if self.ann is not None else "exact"
        self._in_category: dict[str, torch.Tensor] = {}
        self._popular_order = torch.argsort(self.popularity, descending=True)
        self.item_names: dict[str, str] = {}

    # ---- the serving interface shared with Recommender ----------------------------------------
    @property
    def device(self) -> torch.device:
        return self.item_side.device

    def to(self, device: str) -> FactorRecommender:
        self.user_side, self.item_side = self.user_side.to(device), self.item_side.to(device)
        return self

    def with_item_names(self, names: dict[str, str]) -> FactorRecommender:
        """Name items in answers and reasons (ids stay in their own fields); in the checkpoint."""
        self.item_names = {i: n for i, n in names.items() if i in self.index and n}
        return self

    def use_search(self, mode: SearchMode) -> FactorRecommender:
        if mode == "ivf" and self.ann is None:
            raise ValueError("this checkpoint has no IVF index; fit it with ivf_min_items lower")
        self.search = mode
        return self

    # ---- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        interactions,  # scipy.sparse users x items, 1 where a user touched an item
        item_ids: list[str],
        config: FactorConfig = FactorConfig(),
        categories: dict[str, str] | None = None,
        metadata: dict | None = None,
        validation_histories: Sequence[Sequence[str]] = (),
    ) -> FactorRecommender:
        """Factors from the interaction matrix; an IVF index when the catalogue is large, its
        nprobe chosen on `validation_histories` (users not in `interactions`)."""
        user_side, item_side, popularity = spectral_factors(interactions, config)
        return cls.from_factors(
            user_side, item_side, item_ids, popularity, config, categories, metadata,
            validation_histories,
        )  # fmt: skip

    @classmethod
    def from_factors(
        cls,
        user_side: np.ndarray,
        item_side: np.ndarray,
        item_ids: list[str],
        popularity: np.ndarray,
        config: FactorConfig = FactorConfig(),
        categories: dict[str, str] | None = None,
        metadata: dict | None = None,
        validation_histories: Sequence[Sequence[str]] = (),
    ) -> FactorRecommender:
        """The model over factors already fitted (e.g. the leading columns of a larger rank,
        chosen on validation: training/recommender/forms.py), its IVF index built as in `fit`."""
        model = cls(user_side, item_side, item_ids, popularity, categories, metadata)
        if len(item_ids) >= config.ivf_min_items:
            model._build_index(validation_histories, config)
        return model

    def _build_index(self, histories: Sequence[Sequence[str]], config: FactorConfig) -> None:
        """The IVF index (ann.py); its nprobe the smallest reaching TARGET_RECALL on
        `histories` against exact search."""
        started = time.perf_counter()
        self.ann = FactorIndex.build(
            self.item_side.numpy(), config.seed, config.ivf_head_share, config.ivf_min_head
        )
        requests = [Request(h) for h in histories]
        queries = self._queries(requests)
        usable = np.abs(queries).sum(1) > 0
        pairs = [(q, r) for q, r, ok in zip(queries, requests, usable, strict=True) if ok]
        truth = [self._exact_top(q, r) for q, r in pairs]
        found_recall = float("nan")
        for nprobe in NPROBES:
            self.ann.nprobe = nprobe
            if not pairs:
                break
            found_recall = recall_at(
                np.array([self._ann_top(q, r) for q, r in pairs]), np.array(truth)
            )
            if found_recall >= TARGET_RECALL:
                break
        self.search = "ivf"
        self.metadata.update(
            ivf_nlist=self.ann.nlist,
            ivf_nprobe=self.ann.nprobe,
            ivf_exact_head=len(self.ann.head),
            ivf_validation_recall_at_10=found_recall,
        )
        log.info(
            "IVF index: %d lists, nprobe %d (recall@10 %.3f on %d validation users), %.1f s",
            self.ann.nlist, self.ann.nprobe, found_recall, len(pairs),
            time.perf_counter() - started,
        )  # fmt: skip

    def _exact_top(self, query: np.ndarray, request: Request) -> list[int]:
        seen, _ = self._history(request)
        return self._top(torch.from_numpy(query), 10, seen, None, mode="exact")[0]

    def _ann_top(self, query: np.ndarray, request: Request) -> list[int]:
        seen, _ = self._history(request)
        found = self._top(torch.from_numpy(query), 10, seen, None, mode="ivf", fall_back=False)[0]
        return found + [-1] * (10 - len(found))

    # ---- checkpoint --------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        from core.files import atomic_path

        payload = {
            "format": FACTORS_FORMAT,
            "user_side": self.user_side.cpu(),
            "item_side": self.item_side.cpu(),
            "item_ids": self.item_ids,
            "popularity": self.popularity,
            "categories": self.categories,
            "item_names": self.item_names,
            "metadata": self.metadata,
            "ann": None if self.ann is None else self.ann.to_payload(),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def from_payload(cls, payload: dict) -> FactorRecommender:
        ann = payload["ann"]
        return cls(
            payload["user_side"].numpy(),
            payload["item_side"].numpy(),
            payload["item_ids"],
            payload["popularity"].numpy(),
            payload["categories"],
            payload["metadata"],
            None if ann is None else FactorIndex.from_payload(ann),
        ).with_item_names(payload.get("item_names", {}))  # none in older checkpoints

    # ---- inference ---------------------------------------------------------------------------
    def recommend(self, history: Sequence[str] | None, k: int = 10, **context) -> Recommendations:
        return self.recommend_batch([Request(history, k, **context)])[0]

    @torch.no_grad()
    def recommend_batch(self, requests: Sequence[Request]) -> list[Recommendations]:
        for request in requests:
            check_request(request)
        return [named(self._answer(r), self.item_names) for r in requests]

    def _history(self, request: Request) -> tuple[list[int], int]:
        items = list(request.history or [])
        if request.current_item is not None:
            items.append(request.current_item)
        indices = sorted({self.index[i] for i in items if i in self.index})
        return indices, sum(1 for i in items if i not in self.index)

    def _queries(self, requests: Sequence[Request]) -> np.ndarray:
        out = np.zeros((len(requests), self.user_side.shape[1]), dtype=np.float32)
        for row, request in enumerate(requests):
            seen, _ = self._history(request)
            if seen:
                out[row] = self.user_side[seen].sum(0).cpu().numpy()
        return out

    def _answer(self, request: Request) -> Recommendations:
        seen, unknown = self._history(request)
        notes = []
        if unknown:
            notes.append(f"{unknown} history item(s) unknown to this model version were ignored")
        candidates = self._category_items(request.category) if request.category else None
        if candidates is not None and not len(candidates):
            notes.append(f"no item in category {request.category!r}; nothing to recommend")
        available = (len(self.item_ids) if candidates is None else len(candidates)) - (
            len(seen) if candidates is None else int(np.isin(seen, candidates.numpy()).sum())
        )
        k = min(request.k, available)
        if request.k > available and available > 0:
            notes.append(f"only {available} item(s) left to recommend; k={request.k} capped")
        if not seen:
            items = self._popular(k, candidates)
            reason = fallback_reason(request)
            return Recommendations(items, fallback=True, fallback_reason=reason, notes=notes)
        query = self.user_side[seen].sum(0)
        top, scores = self._top(query, k, seen, candidates)
        matches = self.user_side[seen] @ self.item_side[top].T if top else None
        items = []
        for n, (i, score) in enumerate(zip(top, scores, strict=True)):
            source = self.item_ids[seen[int(matches[:, n].argmax())]]
            reason = viewed_reason(source, self.item_names)
            items.append(ScoredItem(self.item_ids[i], score, reason, source))
        return Recommendations(items, notes=notes)

    def _top(
        self,
        query: torch.Tensor,
        k: int,
        seen: list[int],
        candidates: torch.Tensor | None,
        mode: SearchMode | None = None,
        fall_back: bool = True,
    ) -> tuple[list[int], list[float]]:
        """The k best unseen items (of `candidates`, else of all) by `mode`, the service's
        search unless given; a category filter is always searched exactly, over its items."""
        if k <= 0:
            return [], []
        if (mode or self.search) == "ivf" and candidates is None:
            found, scores = self.ann.search(self.item_side, query, k + len(seen))
            excluded = set(seen)
            kept = [(i, v) for i, v in zip(found, scores, strict=True) if i not in excluded][:k]
            if len(kept) == k or not fall_back:  # else the probed lists ran dry: search exactly
                return [i for i, _ in kept], [v for _, v in kept]
        pool = self.item_side if candidates is None else self.item_side[candidates]
        scores = pool @ query
        if candidates is None:
            scores[seen] = float("-inf")
        else:
            scores[torch.isin(candidates, torch.tensor(seen))] = float("-inf")
        best = torch.topk(scores, k)
        indices = best.indices if candidates is None else candidates[best.indices]
        return indices.tolist(), best.values.tolist()

    def _popular(self, k: int, candidates: torch.Tensor | None) -> list[ScoredItem]:
        order = self._popular_order
        if candidates is not None:
            order = order[torch.isin(order, candidates)]
        return [
            ScoredItem(self.item_ids[i], float(self.popularity[i]), "popular with shoppers")
            for i in order[:k].tolist()
        ]

    def _category_items(self, category: str) -> torch.Tensor:
        if category not in self._in_category:
            members = [n for n, i in enumerate(self.item_ids) if self.categories.get(i) == category]
            self._in_category[category] = torch.tensor(members, dtype=torch.long)
        return self._in_category[category]


def spectral_factors(
    interactions, config: FactorConfig = FactorConfig()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P = D^-1/2 V and Q = D^1/2 V (items x rank, columns by falling singular value, so the
    first r columns are the rank-r factors) and the interactions per item, from a users x items
    sparse matrix (1 where a user touched an item)."""
    from sklearn.utils.extmath import randomized_svd

    x = interactions.tocsr().astype(np.float64)
    x.data[:] = 1.0
    item_degree = np.maximum(np.asarray(x.sum(0)).ravel(), 1.0)
    user_degree = np.maximum(np.asarray(x.sum(1)).ravel(), 1.0)
    normalised = x.multiply(1 / np.sqrt(user_degree)[:, None]).multiply(
        1 / np.sqrt(item_degree)[None, :]
    )
    rank = min(config.rank, min(x.shape) - 1)
    started = time.perf_counter()
    _, _, vt = randomized_svd(
        normalised.tocsr(), rank, n_iter=config.svd_iterations, random_state=config.seed
    )
    v = vt.T
    log.info("factors: rank %d SVD of %s in %.1f s", rank, x.shape, time.perf_counter() - started)
    popularity = np.asarray(x.sum(0)).ravel()
    return v / np.sqrt(item_degree)[:, None], v * np.sqrt(item_degree)[:, None], popularity


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of `truth` that `found` holds (recall@k against exact search)."""
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))
