"""Full-ranking top-k metrics, computed as RecBole 1.2.1 computes them.

Every item is ranked for every user with at least one target; the items in `seen` (train at
validation; train and valid at test) are ranked last. Per user, with `hits@k` the targets among
the top k:

    Recall@k = hits@k / |targets|        Hit@k = 1 if hits@k > 0
    NDCG@k   = DCG@k / IDCG@k, the ideal DCG over min(|targets|, k) relevant items
    MRR@k    = 1 / rank of the first target in the top k (0 if none)

and each metric is the mean over those users.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

METRICS = ("recall", "ndcg", "hit", "mrr")


def ranking_metrics(
    scores: np.ndarray, seen: sp.spmatrix, targets: sp.spmatrix, ks: tuple[int, ...] = (10, 20)
) -> dict[str, float]:
    """`scores` (users x items); `seen` and `targets` binary matrices of the same shape."""
    import torch

    if scores.shape != seen.shape or scores.shape != targets.shape:
        raise ValueError(f"shapes differ: {scores.shape}, {seen.shape}, {targets.shape}")
    target_counts = np.asarray(targets.sum(axis=1)).ravel()
    users = np.flatnonzero(target_counts > 0)
    ranked = torch.as_tensor(np.asarray(scores[users], dtype=np.float32)).clone()
    ranked[torch.as_tensor(seen[users].toarray() > 0)] = -float("inf")
    kmax = min(max(ks), ranked.shape[1])
    top = torch.topk(ranked, kmax, dim=1).indices.numpy()
    hits = np.take_along_axis(targets[users].toarray() > 0, top, axis=1).astype(np.float64)
    counts = target_counts[users].astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, kmax + 2))
    found = np.cumsum(hits, axis=1)
    dcg = np.cumsum(hits * discounts, axis=1)
    ideal = np.cumsum(discounts)
    first = np.argmax(hits > 0, axis=1)
    out = {}
    for k in ks:
        at = min(k, kmax) - 1
        out[f"recall@{k}"] = float(np.mean(found[:, at] / counts))
        idcg = ideal[np.minimum(counts, k).astype(int) - 1]
        out[f"ndcg@{k}"] = float(np.mean(dcg[:, at] / idcg))
        out[f"hit@{k}"] = float(np.mean(found[:, at] > 0))
        out[f"mrr@{k}"] = float(np.mean(np.where(found[:, at] > 0, 1.0 / (first + 1), 0.0)))
    return out


def per_user_metrics(
    recommended: list[list[str]], targets: list[list[str]], ks: tuple[int, ...] = (10, 20)
) -> dict[str, np.ndarray]:
    """The same metrics from top-k lists (any model behind the predict interface, e.g. a
    registered champion whose vocabulary differs), one value per user: `recommended[u]` ranked
    best first, seen items already left out; users without targets are skipped, as in
    `ranking_metrics` (the arrays hold the others, in order)."""
    users = [(r, set(t)) for r, t in zip(recommended, targets, strict=True) if t]
    kmax = max(ks)
    discounts = 1.0 / np.log2(np.arange(2, kmax + 2))
    hits = np.zeros((len(users), kmax))
    for row, (ranked, wanted) in zip(hits, users, strict=True):
        row[: min(len(ranked), kmax)] = [item in wanted for item in ranked[:kmax]]
    counts = np.array([len(wanted) for _, wanted in users], dtype=np.float64)
    ideals = np.array([discounts[:n].sum() for n in range(kmax + 1)])  # IDCG of n relevant items
    found, dcg = np.cumsum(hits, axis=1), np.cumsum(hits * discounts, axis=1)
    first = np.argmax(hits > 0, axis=1)
    out = {}
    for k in ks:
        hit = found[:, k - 1] > 0
        out[f"recall@{k}"] = found[:, k - 1] / counts
        out[f"ndcg@{k}"] = dcg[:, k - 1] / ideals[np.minimum(counts, k).astype(int)]
        out[f"hit@{k}"] = hit.astype(np.float64)
        out[f"mrr@{k}"] = np.where(hit, 1.0 / (first + 1), 0.0)
    return {f"{m}@{k}": out[f"{m}@{k}"] for k in ks for m in METRICS}


def list_metrics(
    recommended: list[list[str]], targets: list[list[str]], ks: tuple[int, ...] = (10, 20)
) -> dict[str, float]:
    """`per_user_metrics`, each the mean over the users with a target."""
    if not any(targets):
        raise ValueError("no user with a target to evaluate on")
    per_user = per_user_metrics(recommended, targets, ks)
    return {name: float(np.mean(values)) for name, values in per_user.items()}
