"""Which form the recommender trains in, chosen by catalogue size, and the large form's fit.

* `dense`: the item autoencoder of model.py, up to `RecommenderConfig.dense_max_items` items. Its
  closed form solves and eigendecomposes items x items float64 matrices (~4 alive at once:
  ~2 GB at 8k items, ~7 GB at 16k, 320 GB at 100k), so it cannot train a large catalogue.
* `factors`: above the bound, the model's spectral term alone as factors (factors.py): a
  randomised SVD of the degree-normalised interaction matrix, memory items x rank, trained in
  minutes at 100,000 items. Its rank is chosen among `factor_ranks` by NDCG@10 on the validation
  window (one SVD at the largest rank: its leading columns are the smaller ranks' factors; up to
  `RANK_CHOICE_USERS` validation users, a seeded sample).
  It serves through FactorRecommender, with a faiss IVF index from `ivf_min_items` items.

Metrics of a large catalogue are computed in user batches (`batched_metrics`): one dense
users x items score matrix is 20 GB at 50,000 users and 100,000 items.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .evaluate import ranking_metrics
from .model import RecommenderConfig

log = logging.getLogger(__name__)

DENSE, FACTORS = "dense", "factors"
PRIMARY_METRIC = "ndcg@10"
SCORE_BATCH = 1024  # users scored at once: 400 MB of float32 scores at 100k items
IVF_VALIDATION_USERS = 500  # histories the IVF index's nprobe is chosen on (factors.py)
# validation users the rank is chosen on, a seeded sample: scoring 37k users x 90k items took
# ~90 s a rank on 2 busy cores; NDCG@10 over 5,000 users has a standard error of ~0.002
RANK_CHOICE_USERS = 5_000


@dataclass(frozen=True)
class FormChoice:
    form: str
    items: int
    bound: int
    why: str

    def tags(self) -> dict[str, str]:
        return {
            "aisle.recommender.form": self.form,
            "aisle.recommender.form_why": self.why,
        }


def choose_form(n_items: int, config: RecommenderConfig) -> FormChoice:
    """`dense` up to `config.dense_max_items` items, `factors` above."""
    bound = config.dense_max_items
    if n_items <= bound:
        why = f"{n_items:,} items <= dense_max_items {bound:,}: the dense autoencoder fits"
        return FormChoice(DENSE, n_items, bound, why)
    why = (
        f"{n_items:,} items > dense_max_items {bound:,}: items x items matrices would need "
        f"~{dense_gigabytes(n_items):.0f} GB; the factor form scales with items x rank"
    )
    return FormChoice(FACTORS, n_items, bound, why)


def dense_gigabytes(n_items: int) -> float:
    """Peak memory of an items x items closed form: ~4 float64 matrices alive at once."""
    return 4 * 8 * n_items**2 / 1e9


def batched_metrics(
    score: Callable[[sp.csr_matrix], np.ndarray],
    history: sp.csr_matrix,
    targets: sp.csr_matrix,
    batch: int = SCORE_BATCH,
) -> dict[str, float]:
    """`ranking_metrics` over the users with a target, `batch` users scored at a time; the same
    means as one call on the whole matrix (each batch weighted by its users)."""
    users = np.flatnonzero(np.asarray(targets.sum(axis=1)).ravel() > 0)
    if not len(users):
        raise ValueError("no user with a target to evaluate on")
    history, targets = sp.csr_matrix(history), sp.csr_matrix(targets)
    totals: dict[str, float] = {}
    for start in range(0, len(users), batch):
        rows = users[start : start + batch]
        got = ranking_metrics(score(history[rows]), history[rows], targets[rows])
        for name, value in got.items():
            totals[name] = totals.get(name, 0.0) + value * len(rows)
    return {name: total / len(users) for name, total in totals.items()}


@dataclass
class FactorFit:
    model: Any  # FactorRecommender
    rank: int
    valid: dict[str, float]
    valid_by_rank: dict[int, float] = field(default_factory=dict)  # NDCG@10 per rank tried
    seconds: float = 0.0


def fit_factor_form(
    train: sp.csr_matrix,
    valid: sp.csr_matrix,
    item_ids: list[str],
    config: RecommenderConfig,
    categories: dict[str, str] | None = None,
    metadata: dict | None = None,
) -> FactorFit:
    """The factor form, its rank the best of `config.factor_ranks` on the validation window."""
    from dataclasses import replace

    from .factors import FactorConfig, FactorRecommender, spectral_factors

    started = time.perf_counter()
    ranks = sorted({min(r, min(train.shape) - 1) for r in config.factor_ranks})
    factor_config = replace(FactorConfig(), rank=ranks[-1], seed=config.seed)
    user_side, item_side, popularity = spectral_factors(train, factor_config)
    with_targets = np.flatnonzero(np.asarray(valid.sum(axis=1)).ravel() > 0)
    sample = np.random.default_rng(config.seed).permutation(with_targets)[:RANK_CHOICE_USERS]
    sample.sort()
    by_rank: dict[int, dict[str, float]] = {}
    for rank in ranks:
        p, q = user_side[:, :rank].astype(np.float32), item_side[:, :rank].astype(np.float32)
        by_rank[rank] = batched_metrics(
            lambda h, p=p, q=q: (h @ p) @ q.T, train[sample], valid[sample]
        )
        log.info("factor form: rank %d valid %s", rank, by_rank[rank])
    best = max(ranks, key=lambda r: by_rank[r][PRIMARY_METRIC])
    histories = [
        [item_ids[i] for i in train[row].indices] for row in with_targets[:IVF_VALIDATION_USERS]
    ]
    model = FactorRecommender.from_factors(
        user_side[:, :best],
        item_side[:, :best],
        item_ids,
        popularity,
        replace(factor_config, rank=best),
        categories,
        metadata,
        histories,
    )
    return FactorFit(
        model,
        best,
        by_rank[best],
        {r: m[PRIMARY_METRIC] for r, m in by_rank.items()},
        time.perf_counter() - started,
    )
