"""Baselines, after RecBole 1.2.1: popularity, ItemKNN and EASE (closed form), BPR-MF (torch).

Each is `fit(train)` on a binary user x item matrix, then `scores(history)` for users' history
rows (the same train matrix in protocol A). BPR-MF's `fit` also takes the valid matrix, on which
it stops early.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from training.recommender.evaluate import ranking_metrics

if TYPE_CHECKING:
    import torch


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
        import torch

        # X'X + lambda I is positive definite: its inverse through a Cholesky factor, with two
        # items x items float64 matrices at the peak (np.linalg.inv held four: 7 GB at 15k items)
        x = sp.csr_matrix(train, dtype=np.float64)
        gram = torch.from_numpy((x.T @ x).toarray())
        gram.diagonal().add_(self.l2)
        factor = torch.linalg.cholesky(gram)
        del gram
        inverse = torch.cholesky_inverse(factor)
        del factor
        inverse /= -inverse.diagonal().clone()
        inverse.fill_diagonal_(0.0)
        self.weights = inverse.numpy()
        return self

    def scores(self, history: sp.spmatrix) -> np.ndarray:
        return np.asarray(history @ self.weights, dtype=np.float32)


class BPRMF:
    """BPR-MF (Rendle et al. 2009) trained as RecBole 1.2.1 trains it by default: 64-d user and
    item embeddings (xavier_normal), score = user . item, loss -log(1e-10 + sigmoid(pos - neg))
    with one negative per train pair drawn uniformly from the items the user has no train
    interaction with, pairs reshuffled every epoch, Adam.

    With `valid`, MRR@10 on it (train items masked) is measured after every epoch; a tie counts
    as an improvement, training stops once more than `patience` epochs in a row fail to improve
    (RecBole's `early_stopping`), and the best epoch's embeddings are kept. RecBole's default
    patience is 10; at lr 1e-3 valid MRR@10 is noisy enough that 10 stops runs early, and 30
    lands on the published MovieLens-100k reference.

    Runs on CUDA when there is one (or on `device`); deterministic for a seed on the CPU (CUDA
    sums embedding gradients in no fixed order). `history` holds each epoch's mean loss and
    valid MRR@10, `best_epoch` the epoch whose embeddings are kept."""

    def __init__(
        self,
        dim: int = 64,
        lr: float = 1e-3,
        batch_size: int = 2048,
        patience: int = 30,
        max_epochs: int = 300,
        seed: int = 2020,
        device: str | torch.device | None = None,
        progress: bool = False,
    ) -> None:
        self.dim, self.lr, self.batch_size = dim, lr, batch_size
        self.patience, self.max_epochs, self.seed = patience, max_epochs, seed
        self.device, self.progress = device, progress

    def fit(self, train: sp.spmatrix, valid: sp.spmatrix | None = None) -> BPRMF:
        import torch
        from rich.progress import Progress

        train = sp.csr_matrix(train)
        n_users, n_items = train.shape
        if np.any(train.getnnz(axis=1) >= n_items):
            raise ValueError("a user has every item in train, so no negative can be drawn")
        device = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        pairs = train.tocoo()
        users, items = pairs.row.astype(np.int64), pairs.col.astype(np.int64)
        seen = np.unique(users * n_items + items)
        self.factors = [torch.empty(n, self.dim, device=device) for n in (n_users, n_items)]
        for factor in self.factors:
            torch.nn.init.xavier_normal_(factor).requires_grad_()
        user_factors, item_factors = self.factors
        optimizer = torch.optim.Adam(self.factors, lr=self.lr)
        self.history: list[dict[str, Any]] = []
        best, best_factors, since_best = -np.inf, self.factors, 0
        progress = Progress(disable=not self.progress, transient=True)
        with _one_cpu_thread(), progress as bar:
            task = bar.add_task("BPR-MF", total=self.max_epochs)
            for epoch in range(self.max_epochs):
                order = rng.permutation(len(users))
                negatives = _negatives(users[order], seen, n_items, rng)
                triples = torch.as_tensor(np.stack([users[order], items[order], negatives]))
                loss_sum = 0.0
                for user, positive, negative in triples.to(device).split(self.batch_size, dim=1):
                    user_vectors = user_factors[user]
                    positive_scores = (user_vectors * item_factors[positive]).sum(1)
                    negative_scores = (user_vectors * item_factors[negative]).sum(1)
                    loss = -torch.log(1e-10 + torch.sigmoid(positive_scores - negative_scores))
                    optimizer.zero_grad()
                    loss.mean().backward()
                    optimizer.step()
                    loss_sum += loss.sum().item()
                mrr = None
                if valid is not None:
                    mrr = ranking_metrics(self.scores(train), train, valid, ks=(10,))["mrr@10"]
                loss_mean = loss_sum / len(users)
                self.history.append({"epoch": epoch, "loss": loss_mean, "valid_mrr@10": mrr})
                bar.update(task, advance=1, description=f"BPR-MF valid MRR@10 {mrr or 0:.4f}")
                if mrr is None or mrr >= best:
                    best, since_best, self.best_epoch = mrr, 0, epoch
                    best_factors = [f.detach().clone() for f in self.factors]
                else:
                    since_best += 1
                    if since_best > self.patience:
                        break
        self.factors = best_factors
        return self

    def scores(self, history: sp.spmatrix) -> np.ndarray:
        import torch

        users, items = self.factors
        if history.shape != (len(users), len(items)):
            raise ValueError(f"history is {history.shape}, the model {(len(users), len(items))}")
        with torch.no_grad():
            return (users @ items.T).cpu().numpy()


@contextmanager
def _one_cpu_thread() -> Iterator[None]:
    """Torch ops on one thread: tensors this small gain nothing from more, and on a busy CPU each
    multi-threaded op waits for its slowest thread (4x slower per epoch, measured on 2 cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _negatives(
    users: np.ndarray, seen: np.ndarray, n_items: int, rng: np.random.Generator
) -> np.ndarray:
    """One item per entry of `users`, uniform over the items that user has not seen: draws are
    redrawn while their key user * n_items + item is in `seen` (sorted)."""

    def unseen(keys: np.ndarray) -> np.ndarray:
        return seen[np.searchsorted(seen, keys).clip(max=len(seen) - 1)] != keys

    negatives = rng.integers(0, n_items, len(users))
    redo = np.flatnonzero(~unseen(users * n_items + negatives))
    while len(redo):
        negatives[redo] = rng.integers(0, n_items, len(redo))
        redo = redo[~unseen(users[redo] * n_items + negatives[redo])]
    return negatives
