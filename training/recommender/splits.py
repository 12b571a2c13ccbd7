"""Evaluation splits of an interaction log into user x item matrices.

Protocol A, comparable to published tables: RecBole 1.2.1's per-user random split (`eval_args:
split RS [0.8, 0.1, 0.1], order RO, group_by user`). The log is shuffled with `torch.randperm`
after `torch.manual_seed(seed)` (RecBole's `init_seed`, then `Dataset.shuffle`), grouped per user
in that order, and each user's rows are cut by RecBole's `_calcu_split_ids` rule: every part but
the first gets floor(ratio x n), the first the rest, and a part whose share lies in (0, 1) is
raised to one row while the first keeps more than one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Split:
    """Binary user x item matrices (CSR, float32) of one split, and what built it."""

    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    seed: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.train.shape


def recbole_split_sizes(total: int, ratios: tuple[float, ...]) -> list[int]:
    """How many of a user's `total` rows go to each part (RecBole's `_calcu_split_ids`)."""
    scale = sum(ratios)
    ratios = tuple(r / scale for r in ratios)
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def random_split(
    users: np.ndarray,
    items: np.ndarray,
    shape: tuple[int, int],
    seed: int,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> Split:
    """Protocol A over interactions given as index arrays, in the log's order."""
    import torch

    if len(users) != len(items):
        raise ValueError(f"{len(users)} users but {len(items)} items")
    torch.manual_seed(seed)
    order = torch.randperm(len(users)).numpy()
    users, items = users[order], items[order]
    by_user = np.argsort(users, kind="stable")  # groups users, keeps the shuffled order
    bounds = np.flatnonzero(np.diff(users[by_user])) + 1
    parts: list[list[np.ndarray]] = [[], [], []]
    for rows in np.split(by_user, bounds):
        start = 0
        for part, count in enumerate(recbole_split_sizes(len(rows), ratios)):
            parts[part].append(rows[start : start + count])
            start += count

    def matrix(chunks: list[np.ndarray]) -> sp.csr_matrix:
        rows = np.concatenate(chunks)
        ones = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((ones, (users[rows], items[rows])), shape=shape)

    return Split(*(matrix(p) for p in parts), seed=seed)
