"""Training loop of the recommender: closed-form start, gradient fine-tuning, early stopping.

Epoch 0 is the closed form of model.py. Each later epoch walks the users in a seeded random order;
for every user it hides a random share of the history, feeds the rest, and maximises the
log-likelihood of the hidden items under a softmax over the items the user was not shown: the
ranking task of serving, where seen items are masked. After each epoch the validation NDCG@10 is
measured (train items masked), and training stops after `patience` epochs without a better one;
the best epoch's weights are kept (epoch 0 included, so fine-tuning can only help on validation).
Fine-tuning also stops before an epoch that would end past `fine_tune_seconds` of it, and runs
only up to `fine_tune_max_items` items: above, one epoch takes minutes (11 min at 15k items on 2
busy cores) and the closed form was kept at 2k and 15k items anyway (benchmarks/recommender.py's
catalogue table).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from .evaluate import ranking_metrics
from .model import ItemAutoencoder, RecommenderConfig

log = logging.getLogger(__name__)

PRIMARY_METRIC = "ndcg@10"


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    loss: float | None  # None for epoch 0, the closed form
    valid: dict[str, float]
    seconds: float


@dataclass
class TrainResult:
    model: ItemAutoencoder
    epochs: list[EpochResult] = field(default_factory=list)
    best_epoch: int = 0
    device: str = "cpu"
    seconds: float = 0.0
    budget_spent: bool = False  # fine-tuning stopped by config.fine_tune_seconds

    @property
    def best_valid(self) -> dict[str, float]:
        return self.epochs[self.best_epoch].valid


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or when asked), CPU otherwise."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def dense(matrix: sp.spmatrix, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(matrix.toarray(), dtype=torch.float32, device=device)


@torch.no_grad()
def score_all(
    model: ItemAutoencoder, history: torch.Tensor, batch_size: int = 1024
) -> torch.Tensor:
    model.eval()
    parts = [model(history[s : s + batch_size]) for s in range(0, len(history), batch_size)]
    return torch.cat(parts) if parts else history.new_zeros((0, model.n_items))


def train_recommender(
    train: sp.spmatrix,
    valid: sp.spmatrix,
    config: RecommenderConfig,
    device: str | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> TrainResult:
    """Fit on `train` (users x items, 0/1); `valid` holds each user's validation items."""
    if train.shape != valid.shape:
        raise ValueError(f"train {train.shape} and valid {valid.shape} differ in shape")
    if train.nnz == 0:
        raise ValueError("the training matrix holds no interaction")
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = np.random.default_rng(config.seed)
    where = pick_device(device)
    history = dense(train, where)
    model = ItemAutoencoder(train.shape[1], config).to(where)
    model.fit_closed_form(history)

    def evaluate_epoch(epoch: int, loss: float | None, t0: float) -> EpochResult:
        scores = score_all(model, history).cpu().numpy()
        result = EpochResult(
            epoch, loss, ranking_metrics(scores, train, valid), time.perf_counter() - t0
        )
        log.info("epoch %d loss %s valid %s", epoch, loss, result.valid)
        if on_epoch is not None:
            on_epoch(result)
        return result

    outcome = TrainResult(model=model, device=str(where))
    outcome.epochs.append(evaluate_epoch(0, None, started))
    # only B is trained (the low-pass term is fixed): one items x items copy, not two
    best_weights = model.weights.detach().clone()
    optimiser = torch.optim.Adam([model.weights], lr=config.learning_rate)
    active = np.flatnonzero(np.asarray(train.sum(axis=1)).ravel() > 1)
    tuning_started = time.perf_counter()
    epochs = config.epochs if model.n_items <= config.fine_tune_max_items else 0
    if epochs < config.epochs:
        log.info("no fine-tuning: %d items > fine_tune_max_items %d; the closed form is kept",
                 model.n_items, config.fine_tune_max_items)  # fmt: skip
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        last = outcome.epochs[-1].seconds if epoch > 1 else 0.0
        if epoch > 1 and t0 - tuning_started + last > config.fine_tune_seconds:
            log.info(
                "fine-tuning budget of %.0f s spent at epoch %d", config.fine_tune_seconds, epoch
            )
            outcome.budget_spent = True
            break
        loss = _fine_tune_epoch(model, history, active, optimiser, config, generator)
        result = evaluate_epoch(epoch, loss, t0)
        outcome.epochs.append(result)
        best = outcome.epochs[outcome.best_epoch].valid[PRIMARY_METRIC]
        if result.valid[PRIMARY_METRIC] > best:
            outcome.best_epoch = epoch
            best_weights.copy_(model.weights.detach())
        elif epoch - outcome.best_epoch >= config.patience:
            log.info("early stop at epoch %d, best %d", epoch, outcome.best_epoch)
            break
    with torch.no_grad():
        model.weights.copy_(best_weights)
    model.eval()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _fine_tune_epoch(
    model: ItemAutoencoder,
    history: torch.Tensor,
    users: np.ndarray,
    optimiser: torch.optim.Optimizer,
    config: RecommenderConfig,
    generator: np.random.Generator,
) -> float:
    model.train()
    order = generator.permutation(users)
    total, batches = 0.0, 0
    for start in range(0, len(order), config.batch_size):
        rows = history[torch.as_tensor(order[start : start + config.batch_size])]
        hide = torch.as_tensor(
            generator.random(tuple(rows.shape)) < config.holdout_share, device=rows.device
        )
        shown = rows * (~hide)
        targets = rows * hide
        keep = targets.sum(1) > 0
        if not keep.any():
            continue
        shown, targets = shown[keep], targets[keep]
        logits = model(shown).masked_fill(shown > 0, float("-inf"))
        log_likelihood = (torch.log_softmax(logits, 1).nan_to_num(neginf=0.0) * targets).sum(1)
        loss = -(log_likelihood / targets.sum(1)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total, batches = total + loss.item(), batches + 1
    return total / max(batches, 1)
