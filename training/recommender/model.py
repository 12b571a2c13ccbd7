"""The recommender: a linear item autoencoder with a spectral low-pass term, in PyTorch.

For a user's history x (a 0/1 row over the catalogue) the model scores every item as

    score(x) = (1 - w) * z_x(x B)  +  w * z_x(x D^-1/2 V V^T D^1/2)

* B (items x items) is a dropout linear autoencoder (DLAE, Steck 2020, "Autoencoders that don't
  overfit towards the identity"). Its start is the closed form of the expected loss under input
  dropout p with L2 weight l2: B = (G + L)^-1 G, G = X^T X, L = l2 I + p / (1 - p) diag(G).
  Training then fine-tunes B by gradient (train.py).
* V holds the top `spectral_rank` eigenvectors of the degree-normalised item graph R^T R,
  R = D_u^-1/2 X D_i^-1/2 (the ideal low-pass filter of GF-CF, Shen et al. 2021): the smooth,
  global co-occurrence structure that a heavily regularised B misses. It is fixed after fitting.
* z_x standardises a user's scores over the items not in x, so both terms share one scale.

Why this model: on MovieLens-100k (protocol A, 3 seeds) it scores NDCG@10 0.336 against EASE's
0.325 and Mult-DAE's 0.312 in the same harness (training/recommender/research/RESULTS.md).
Its only user-side input is the set of items the user touched, which the Feast view
`user_history_fv` serves online exactly as it built the training set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

USER_BLOCK = 4096  # users per block of the Gram sums: a float64 copy of 4096 x items at a time


@dataclass(frozen=True)
class RecommenderConfig:
    """Everything that defines a model and its training; saved with every checkpoint."""

    l2: float = 300.0  # L2 weight of the autoencoder (chosen on validation, RESULTS.md)
    dropout: float = 0.5  # input dropout the closed form averages over
    spectral_rank: int = 64  # eigenvectors kept by the low-pass term
    spectral_weight: float = 0.2  # w: the low-pass term's share of the score
    epochs: int = 20  # fine-tuning epochs at most (0: the closed form only)
    learning_rate: float = 1e-5
    batch_size: int = 128
    holdout_share: float = 0.2  # share of a history hidden as targets in a fine-tuning step
    patience: int = 3  # epochs without a better validation NDCG@10 before stopping
    seed: int = 2020
    # Fine-tuning stops before an epoch that would end past this many seconds of fine-tuning:
    # at 14k items one epoch takes ~50 s on 2 cores and 21 of them took 18 min (issue 22).
    fine_tune_seconds: float = 300.0
    # ... and only up to this many items: at 2k and 15k items no fine-tuned epoch beat the
    # closed form on validation, and one epoch took 11 min at 15k (benchmarks/recommender.py)
    fine_tune_max_items: int = 5_000
    # The form by catalogue size (forms.py): the dense autoencoder up to this many items (its
    # items x items float64 solve and eigendecomposition hold ~4 such matrices: 7 GB at 16k),
    # the factor form above; the EASE reference is skipped above it too (same memory).
    dense_max_items: int = 16_000
    factor_ranks: tuple[int, ...] = (64, 128, 256)  # the factor form's rank, chosen on valid

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def standardise(scores: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Per-user z-score of `scores` over the items not in `seen` (a bool mask of the same shape)."""
    free = (~seen).to(scores.dtype)
    count = free.sum(1, keepdim=True).clamp(min=1)
    mean = (scores * free).sum(1, keepdim=True) / count
    var = (((scores - mean) * free) ** 2).sum(1, keepdim=True) / count
    return (scores - mean) / var.sqrt().clamp(min=1e-12)


class ItemAutoencoder(nn.Module):
    """Scores every item for a batch of 0/1 histories (batch x items)."""

    def __init__(self, n_items: int, config: RecommenderConfig) -> None:
        super().__init__()
        self.config = config
        self.weights = nn.Parameter(torch.zeros(n_items, n_items))
        self.register_buffer("spectral", torch.zeros(n_items, n_items))

    @property
    def n_items(self) -> int:
        return self.weights.shape[0]

    @torch.no_grad()
    def fit_closed_form(self, interactions: torch.Tensor) -> ItemAutoencoder:
        """Set B to the DLAE closed form and the low-pass term, from a users x items 0/1 matrix.

        Computed in float64 (the Gram matrix is ill-conditioned at small l2), stored as float32.
        Memory is the catalogue's, not the users': the Gram matrices are summed over blocks of
        users, the solve goes through a Cholesky factor (G + L is positive definite), and
        only the top `spectral_rank` eigenvectors are computed; at most two items x items float64
        matrices are alive at once (3.6 GB at 15k items).
        """
        import scipy.linalg

        n = self.n_items
        item_degree = interactions.sum(0).to(torch.float64).clamp(min=1)
        user_degree = interactions.sum(1).to(torch.float64).clamp(min=1)

        def gram_over_users(weights: torch.Tensor | None) -> np.ndarray:
            total = torch.zeros((n, n), dtype=torch.float64, device=interactions.device)
            for start in range(0, len(interactions), USER_BLOCK):
                block = interactions[start : start + USER_BLOCK].to(torch.float64)
                left = (
                    block if weights is None else block / weights[start : start + USER_BLOCK, None]
                )
                total.addmm_(left.T, block)
            return total.cpu().numpy()

        # B = (G + L)^-1 G = I - (G + L)^-1 L (L diagonal): the inverse of G + L from its
        # Cholesky factor, G overwritten, so two items x items matrices at most
        system = torch.from_numpy(gram_over_users(None))
        penalty = self.config.l2 + self.config.dropout / (1 - self.config.dropout) * system.diag()
        system.diagonal().add_(penalty)
        factor = torch.linalg.cholesky(system)
        del system
        solved = torch.cholesky_inverse(factor)
        del factor
        solved.mul_(-penalty[None, :]).diagonal().add_(1.0)
        self.weights.copy_(solved)
        del solved

        # R^T R for R = D_u^-1/2 X D_i^-1/2: D_i^-1/2 (X^T D_u^-1 X) D_i^-1/2
        scale = (1 / item_degree.sqrt()).cpu().numpy()
        normalised = gram_over_users(user_degree)
        normalised *= scale[:, None]
        normalised *= scale[None, :]
        rank = min(self.config.spectral_rank, n)
        _, top = scipy.linalg.eigh(  # ascending: the last `rank` are the largest
            normalised, subset_by_index=(n - rank, n - 1), overwrite_a=True, check_finite=False
        )
        del normalised
        top = torch.from_numpy(top).to(self.spectral.device)
        root = item_degree.sqrt().to(self.spectral.device)
        low_pass = ((top / root[:, None]) @ (top * root[:, None]).T).to(torch.float32)
        self.spectral.copy_(low_pass)
        return self

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        seen = history > 0
        learned = standardise(history @ self.weights, seen)
        if self.config.spectral_weight == 0:
            return learned
        smooth = standardise(history @ self.spectral, seen)
        w = self.config.spectral_weight
        return (1 - w) * learned + w * smooth
