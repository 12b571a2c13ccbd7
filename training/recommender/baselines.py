"""Closed-form baselines, after RecBole 1.2.1: popularity, ItemKNN, EASE.

Each is `fit(train)` on a binary user x item matrix, then `scores(history)` for users' history
rows (the same train matrix in protocol A).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Popularity:
    """Items ranked by their number of train interactions (RecBole Pop)."""

    def fit(self, train: sp.spmatrix) -> Popularity:
        self.counts = np.asarray(train.sum(axis=0), dtype=np.float32).ravel()
        return self

    def scores(self, history: sp.spmatrix) -> np.ndarray:
        return np.tile(self.counts, (history.shape[0], 1))


class ItemKNN:
    """Item-based k nearest neighbours, cosine (RecBole's ComputeSimilarity, method 'item'):
    sim(i, j) = x_i . x_j / (|x_i| |x_j| + shrink + 1e-6), no self-similarity; each item keeps
    its k most similar items; score(u, j) = sum over the user's items i of sim(i, j)."""

    def __init__(self, neighbours: int = 100, shrink: float = 0.0) -> None:
        self.neighbours, self.shrink = neighbours, shrink

    def fit(self, train: sp.spmatrix) -> ItemKNN:
        x = sp.csr_matrix(train, dtype=np.float32)
        sim = (x.T @ x).toarray()
        norms = np.sqrt(np.asarray(x.power(2).sum(axis=0)).ravel())
        np.fill_diagonal(sim, 0.0)
        sim /= np.outer(norms, norms) + self.shrink + 1e-6
        k = min(self.neighbours, sim.shape[0])
        keep = np.argpartition(-sim, k - 1, axis=0)[:k]
        columns = np.broadcast_to(np.arange(sim.shape[1]), keep.shape)
        self.weights = np.zeros_like(sim)
        self.weights[keep, columns] = sim[keep, columns]
        return self

    def scores(self, history: sp.spmatrix) -> np.ndarray:
        return np.asarray(history @ self.weights, dtype=np.float32)


class EASE:
    """EASE (Steck 2019): B = I - P diag(1 / diag(P)), P = (X'X + lambda I)^-1, diag(B) = 0."""

    def __init__(self, l2: float = 250.0) -> None:
        self.l2 = l2

    def fit(self, train: sp.spmatrix) -> EASE:
        gram = (train.T @ train).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        inverse = np.linalg.inv(gram)
        self.weights = inverse / -np.diag(inverse)
        np.fill_diagonal(self.weights, 0.0)
        return self

    def scores(self, history: sp.spmatrix) -> np.ndarray:
        return np.asarray(history @ self.weights, dtype=np.float32)
