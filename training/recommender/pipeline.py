"""The recommender's stages, one code path for the DAG, the CLI and the tests.

    stages.STAGES.build_training_set(end)   -> training set path (protocol B windows, dataset.py)
    train_step(path, config, settings)      -> MLflow run id, checkpoint, test metrics
    stages.STAGES.register(trained)         -> registered version (no alias yet), through
                                               load_checkpoint, log_model and version_tags here
    gate.gate_step(training_set, version)   -> passed: alias `challenger` (gate.py)

`train_step` trains (progress per epoch in the log and the MLflow run), evaluates the model and
two baselines on the held-out test window, writes the checkpoint next to the training set, and
logs params, per-epoch metrics, the learning curve, the evaluation table and lineage to MLflow.
Registration logs the checkpoint as the run's pyfunc model with its signature, registers it
as a new version of `recommender`; the gate (gate.py) gives it the alias `challenger` or not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import Settings, get_settings
from training.tracking import run_config

from .buy_again import BuyAgain, fit_buy_again
from .dataset import RecommenderData
from .forms import DENSE, PRIMARY_METRIC, SCORE_BATCH, batched_metrics, choose_form, fit_factor_form
from .model import RecommenderConfig
from .train import EpochResult, dense, pick_device, score_all, train_recommender

log = logging.getLogger(__name__)

EXPERIMENT = "recommender"
CHECKPOINT_FILE = "recommender.pt"
EASE_GRID = (100.0, 300.0, 1000.0)


def evaluate_test(data: RecommenderData, score: Callable[[Any], np.ndarray]) -> dict[str, float]:
    """Protocol B: rank every item for each test user, the history known then masked; users
    scored in batches (forms.py), so a large catalogue's scores never sit in memory at once."""
    return batched_metrics(score, data.test_history, data.test_targets)


def baseline_table(
    data: RecommenderData, dense_max_items: int = RecommenderConfig.dense_max_items
) -> dict[str, dict[str, float]]:
    """Popularity and EASE (lambda chosen on the validation window) on the same test window.
    EASE is left out above `dense_max_items` items: its items x items inverse does not fit
    (`reference_notes` says so)."""
    from .baselines import EASE, Popularity

    table = {"popularity": evaluate_test(data, Popularity().fit(data.train).scores)}
    if data.train.shape[1] > dense_max_items:
        return table
    fits = []
    for l2 in EASE_GRID:  # one fit alive at a time: its inverse is items x items float64
        fitted = EASE(l2).fit(data.train)
        valid = batched_metrics(fitted.scores, data.train, data.valid)[PRIMARY_METRIC]
        # the test figures of every l2 now, kept only for the one best on validation
        fits.append({**evaluate_test(data, fitted.scores), "l2": l2, "valid_ndcg@10": valid})
        del fitted
    # the l2 travels with the figures: the gate refits this EASE on its own rows (gate.py)
    best = max(fits, key=lambda f: f["valid_ndcg@10"])
    table[f"ease (l2={best['l2']:g})"] = best
    return table


def ease_lists(training_set: str | Path, l2: float, users: list[str], k: int) -> list[list[str]]:
    """EASE(l2) fitted on the training set's fit histories: the top k unseen item ids for each
    of `users` (test users), from the history the test window knew; for the gate, which scores
    every model through lists on the same rows."""
    from .baselines import EASE

    data = RecommenderData.load(Path(training_set))
    model = EASE(l2).fit(data.train)
    where = {user: n for n, user in enumerate(data.test_users)}
    rows = np.array([where[u] for u in users], dtype=np.int64)
    lists: list[list[str]] = []
    for start in range(0, len(rows), SCORE_BATCH):
        history = data.test_history[rows[start : start + SCORE_BATCH]]
        scores = model.scores(history)
        scores[history.toarray() > 0] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        lists += [[data.item_ids[i] for i in ranked] for ranked in top]
    return lists


def reference_notes(n_items: int, dense_max_items: int) -> list[str]:
    """What the reference table leaves out, and why."""
    if n_items <= dense_max_items:
        return []
    return [
        f"EASE skipped: {n_items:,} items > dense_max_items {dense_max_items:,} (its inverse "
        f"would need ~{2 * 8 * n_items**2 / 1e9:.0f} GB)"
    ]


def strongest_reference(references: dict[str, dict[str, float]]) -> tuple[str, float]:
    """The reference with the highest test NDCG@10, and that figure."""
    name = max(references, key=lambda n: references[n][PRIMARY_METRIC])
    return name, references[name][PRIMARY_METRIC]


def train_step(
    training_set: str | Path,
    config: RecommenderConfig | dict[str, Any] | None = None,
    settings: Settings | None = None,
    device: str | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one model in a new MLflow run; returns the run id, checkpoint, metrics.

    `config` may be a dict of RecommenderConfig fields to change (a DAG's params; None values
    keep the default). The form (forms.py) follows the catalogue's size: the dense autoencoder
    up to `dense_max_items`, the factor form above; the choice and why are the run's tags.
    """
    import mlflow

    from training.tracking import lineage as run_lineage
    from training.tracking import use_tracking

    settings = settings or get_settings()
    config = recommender_config(config, settings)
    training_set = Path(training_set)
    data = RecommenderData.load(training_set)
    windows = data.metadata["windows"]
    lineage = run_lineage(settings, data.metadata, training_set)
    choice = choose_form(data.train.shape[1], config)
    log.info("recommender form: %s (%s)", choice.form, choice.why)
    use_tracking(settings, EXPERIMENT)
    with mlflow.start_run(run_name=f"{lineage['dataset']} {windows['end'][:10]}") as run:
        mlflow.set_tags({f"aisle.{k}": v for k, v in lineage.items()} | choice.tags())
        mlflow.log_params(
            {
                **config.to_dict(),
                "form": choice.form,
                "users": data.train.shape[0],
                "items": data.train.shape[1],
                "train_interactions": data.train.nnz,
                "device": str(pick_device(device)),
            }
        )
        # the references first: their items x items matrices are freed before the model's
        started = time.perf_counter()
        references = baseline_table(data, config.dense_max_items)
        notes = reference_notes(data.train.shape[1], config.dense_max_items)
        mlflow.log_metric("reference_seconds", time.perf_counter() - started)
        reference, reference_ndcg = strongest_reference(references)
        metadata: dict[str, Any] = {
            "form": {"form": choice.form, "why": choice.why, "dense_max_items": choice.bound},
            # the gate holds the model to the strongest of these (gate.py), same test window
            "references": references,
            "reference_notes": notes,
            "lineage": {**lineage, "mlflow_run_id": run.info.run_id},
        }
        categories = data.metadata.get("categories", {})
        if choice.form == DENSE:
            recommender, trained = _train_dense(
                data, config, device, on_epoch, metadata, references
            )
        else:
            recommender, trained = _train_factors(data, config, categories, metadata)
        buy_again = BuyAgain.parse(settings.recommender_buy_again)
        if buy_again.on and choice.form == DENSE:  # rebuys among targets and answers
            trained["test"], references = fit_buy_again(data, buy_again, recommender)
            recommender.metadata["references"] = references  # what the gate holds it to
            mlflow.set_tag("aisle.recommender.buy_again", buy_again.setting)
        elif buy_again.on:
            log.warning("buy-again is not built for the factor form yet: trained without it")
        test = trained["test"]
        table = {"aisle (ours)": test, **references}
        mlflow.log_metrics({f"test_{k.replace('@', '_at_')}": v for k, v in test.items()})
        mlflow.log_metrics({"train_seconds": trained["seconds"]})
        record = _evaluation_record(table, data, windows) | {
            "form": metadata["form"],
            "notes": notes,
        }
        mlflow.log_dict(record, "evaluation/table.json")
        mlflow.log_text(_markdown(table, notes), "evaluation/table.md")
        recommender.with_item_names(data.metadata.get("item_names", {}))  # readable reasons
        checkpoint = recommender.save(training_set.with_name(CHECKPOINT_FILE))
        mlflow.log_artifact(str(checkpoint), "checkpoint")
    log.info(
        "trained %s (%s): test %s; strongest reference %s %.4f",
        run.info.run_id, choice.form, test, reference, reference_ndcg,
    )  # fmt: skip
    return {
        "run_id": run.info.run_id,
        "checkpoint": str(checkpoint),
        "test": test,
        "form": choice.form,
        "best_epoch": trained.get("best_epoch"),
        "train_seconds": trained["seconds"],
        "references": references,
    }


def _train_dense(
    data: RecommenderData,
    config: RecommenderConfig,
    device: str | None,
    on_epoch: Callable[[EpochResult], None] | None,
    metadata: dict[str, Any],
    references: dict[str, dict[str, float]],
):
    """The item autoencoder (model.py, train.py); per-epoch metrics and the learning curve.
    Where the run's EASE scored higher on the validation window, the autoencoder is given
    EASE's weights instead (its scores then rank as EASE's do): a dense model never ships
    below EASE on validation, the window the choice may look at."""
    import mlflow

    from .predict import Recommender

    def logged(epoch: EpochResult) -> None:
        metrics = {f"valid_{k.replace('@', '_at_')}": v for k, v in epoch.valid.items()}
        if epoch.loss is not None:
            metrics["train_loss"] = epoch.loss
        mlflow.log_metrics(metrics, step=epoch.epoch)
        if on_epoch is not None:
            on_epoch(epoch)

    result = train_recommender(data.train, data.valid, config, device, on_epoch=logged)
    kept_valid = result.best_valid
    ease = next((r for r in references.values() if "valid_ndcg@10" in r), None)
    if ease is not None and ease["valid_ndcg@10"] > result.best_valid[PRIMARY_METRIC]:
        log.info(
            "EASE (l2=%g) beats the autoencoder on validation (%.4f > %.4f): its weights ship",
            ease["l2"], ease["valid_ndcg@10"], result.best_valid[PRIMARY_METRIC],
        )  # fmt: skip
        where = result.model.weights.device
        result.model = None  # freed before EASE's inverse is made: both are items x items
        result.model = _ease_autoencoder(data, ease["l2"], config).to(where)
        metadata["form"].update(weights=f"ease (l2={ease['l2']:g})")
        mlflow.set_tag("aisle.recommender.weights", f"ease (l2={ease['l2']:g})")
        kept_valid = batched_metrics(_dense_scorer(result.model, device), data.train, data.valid)
    test = evaluate_test(data, _dense_scorer(result.model, device))
    mlflow.log_metrics({"best_epoch": result.best_epoch})
    mlflow.set_tag("aisle.recommender.fine_tune_budget_spent", str(result.budget_spent))
    mlflow.log_figure(_learning_curve(result.epochs, result.best_epoch), "learning_curve.png")
    metadata.update(
        metrics={"test": test, "valid": kept_valid},
        best_epoch=result.best_epoch,
        epochs=[asdict(e) for e in result.epochs],
    )
    recommender = Recommender(
        result.model.cpu(),
        data.item_ids,
        data.popularity(),
        data.metadata.get("categories", {}),
        metadata,
    )
    trained = {"test": test, "best_epoch": result.best_epoch, "seconds": result.seconds}
    return recommender, trained


def _dense_scorer(model, device: str | None) -> Callable[[Any], np.ndarray]:
    where = pick_device(device)
    return lambda h: score_all(model, dense(h, where)).cpu().numpy()


def _ease_autoencoder(data: RecommenderData, l2: float, config: RecommenderConfig):
    """The item autoencoder holding EASE(l2)'s weights and no low-pass term."""
    from dataclasses import replace

    import torch

    from .baselines import EASE
    from .model import ItemAutoencoder

    weights = EASE(l2).fit(data.train).weights
    model = ItemAutoencoder(data.train.shape[1], replace(config, spectral_weight=0.0))
    with torch.no_grad():
        model.weights.copy_(torch.from_numpy(weights))
    return model.eval()


def _train_factors(
    data: RecommenderData,
    config: RecommenderConfig,
    categories: dict[str, str],
    metadata: dict[str, Any],
):
    """The factor form (forms.py), its rank chosen on the validation window."""
    import mlflow

    fit = fit_factor_form(data.train, data.valid, data.item_ids, config, categories, metadata)
    p, q = fit.model.user_side.numpy(), fit.model.item_side.numpy()
    test = evaluate_test(data, lambda h: (h @ p) @ q.T)
    mlflow.log_params({"factor_rank": fit.rank})
    mlflow.log_metrics({f"valid_ndcg_at_10_rank_{r}": v for r, v in fit.valid_by_rank.items()})
    mlflow.log_metrics({f"valid_{k.replace('@', '_at_')}": v for k, v in fit.valid.items()})
    fit.model.metadata.update(
        metrics={"test": test, "valid": fit.valid}, factor_rank=fit.rank, best_epoch=0
    )
    return fit.model, {"test": test, "best_epoch": None, "seconds": fit.seconds}


def load_checkpoint(checkpoint: str | Path):
    """The trained recommender, for registration (training/stages.py `register_step`)."""
    from .predict import Recommender

    return Recommender.load(checkpoint, device="cpu")


def log_model(checkpoint: Path, recommender) -> Any:
    """Log the checkpoint as the active run's pyfunc model, registered as a new version."""
    from .registry import log_recommender

    return log_recommender(checkpoint, recommender.item_ids[:3])


def version_tags(recommender) -> dict[str, Any]:
    """The metric a registered version carries beside its lineage."""
    return {"test_ndcg_at_10": round(recommender.metadata["metrics"]["test"]["ndcg@10"], 4)}


def recommender_config(
    config: RecommenderConfig | dict[str, Any] | None = None, settings: Settings | None = None
) -> RecommenderConfig:
    """The configuration a run trains with: the default, the setting
    `training_config.recommender`, then `config` (a DAG's params or the CLI's options)."""
    return run_config(RecommenderConfig(), config, "recommender", settings or get_settings())


def _evaluation_record(table: dict, data: RecommenderData, windows: dict) -> dict[str, Any]:
    return {
        "protocol": "B: temporal split at day boundaries, full ranking, history masked",
        "windows": windows,
        "test_users": int((data.test_targets.sum(axis=1) > 0).sum()),
        "cold_item_targets": data.cold_targets,
        "models": table,
    }


def _markdown(table: dict[str, dict[str, float]], notes: list[str] = ()) -> str:
    columns = ["ndcg@10", "recall@10", "hit@10", "ndcg@20", "recall@20", "hit@20"]
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, metrics in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{metrics[c]:.4f}" for c in columns) + " |")
    return "\n".join([*lines, *(f"\n{note}" for note in notes)]) + "\n"


def _learning_curve(epochs: list[EpochResult], best: int):
    from matplotlib.figure import Figure  # no pyplot: no global figure state in a worker

    figure = Figure(figsize=(6, 3.5))
    left = figure.subplots()
    steps = [e.epoch for e in epochs]
    left.plot(steps, [e.valid["ndcg@10"] for e in epochs], "o-", label="valid NDCG@10")
    left.axvline(best, color="grey", linestyle="--", label=f"kept: epoch {best}")
    left.set_xlabel("epoch (0 = closed form)")
    left.set_ylabel("valid NDCG@10")
    losses = [(e.epoch, e.loss) for e in epochs if e.loss is not None]
    if losses:
        right = left.twinx()
        right.plot(*zip(*losses, strict=True), "s:", color="tab:red", label="train loss")
        right.set_ylabel("train loss")
    left.legend(loc="lower left")
    left.set_title("Recommender learning curve")
    figure.tight_layout()
    return figure
