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
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import Settings, get_settings
from training.tracking import run_config

from .dataset import RecommenderData
from .model import RecommenderConfig
from .train import EpochResult, dense, pick_device, score_all, train_recommender

log = logging.getLogger(__name__)

EXPERIMENT = "recommender"
CHECKPOINT_FILE = "recommender.pt"
EASE_GRID = (100.0, 300.0, 1000.0)


def evaluate_test(data: RecommenderData, score: Callable[[Any], np.ndarray]) -> dict[str, float]:
    """Protocol B: rank every item for each test user, the history known then masked."""
    from .evaluate import ranking_metrics

    return ranking_metrics(score(data.test_history), data.test_history, data.test_targets)


def baseline_table(data: RecommenderData) -> dict[str, dict[str, float]]:
    """Popularity and EASE (lambda chosen on the validation window) on the same test window."""
    from .baselines import EASE, Popularity
    from .evaluate import ranking_metrics

    table = {"popularity": evaluate_test(data, Popularity().fit(data.train).scores)}
    fitted = [EASE(l2).fit(data.train) for l2 in EASE_GRID]
    valid = [ranking_metrics(m.scores(data.train), data.train, data.valid) for m in fitted]
    best = fitted[int(np.argmax([v["ndcg@10"] for v in valid]))]
    table[f"ease (l2={best.l2:g})"] = evaluate_test(data, best.scores)
    return table


def train_step(
    training_set: str | Path,
    config: RecommenderConfig | dict[str, Any] | None = None,
    settings: Settings | None = None,
    device: str | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one model in a new MLflow run; returns the run id, checkpoint, metrics.

    `config` may be a dict of RecommenderConfig fields to change (a DAG's params; None values
    keep the default).
    """
    import mlflow

    from training.tracking import lineage as run_lineage
    from training.tracking import use_tracking

    from .predict import Recommender

    settings = settings or get_settings()
    config = recommender_config(config, settings)
    training_set = Path(training_set)
    data = RecommenderData.load(training_set)
    windows = data.metadata["windows"]
    lineage = run_lineage(settings, data.metadata, training_set)
    use_tracking(settings, EXPERIMENT)
    with mlflow.start_run(run_name=f"{lineage['dataset']} {windows['end'][:10]}") as run:
        mlflow.set_tags({f"aisle.{k}": v for k, v in lineage.items()})
        mlflow.log_params(
            {
                **config.to_dict(),
                "users": data.train.shape[0],
                "items": data.train.shape[1],
                "train_interactions": data.train.nnz,
                "device": str(pick_device(device)),
            }
        )

        def logged(epoch: EpochResult) -> None:
            metrics = {f"valid_{k.replace('@', '_at_')}": v for k, v in epoch.valid.items()}
            if epoch.loss is not None:
                metrics["train_loss"] = epoch.loss
            mlflow.log_metrics(metrics, step=epoch.epoch)
            if on_epoch is not None:
                on_epoch(epoch)

        result = train_recommender(data.train, data.valid, config, device, on_epoch=logged)
        test = evaluate_test(
            data, lambda h: score_all(result.model, dense(h, pick_device(device))).cpu().numpy()
        )
        table = {"aisle (ours)": test, **baseline_table(data)}
        mlflow.log_metrics({f"test_{k.replace('@', '_at_')}": v for k, v in test.items()})
        mlflow.log_metrics({"best_epoch": result.best_epoch, "train_seconds": result.seconds})
        mlflow.log_dict(_evaluation_record(table, data, windows), "evaluation/table.json")
        mlflow.log_text(_markdown(table), "evaluation/table.md")
        figure = _learning_curve(result.epochs, result.best_epoch)
        mlflow.log_figure(figure, "learning_curve.png")

        metadata = {
            "metrics": {"test": test, "valid": result.best_valid},
            "best_epoch": result.best_epoch,
            "epochs": [asdict(e) for e in result.epochs],
            "lineage": {**lineage, "mlflow_run_id": run.info.run_id},
        }
        recommender = Recommender(
            result.model.cpu(),
            data.item_ids,
            data.popularity(),
            data.metadata.get("categories", {}),
            metadata,
        )
        checkpoint = recommender.save(training_set.with_name(CHECKPOINT_FILE))
        mlflow.log_artifact(str(checkpoint), "checkpoint")
    log.info("trained %s: best epoch %d, test %s", run.info.run_id, result.best_epoch, test)
    return {
        "run_id": run.info.run_id,
        "checkpoint": str(checkpoint),
        "test": test,
        "best_epoch": result.best_epoch,
    }


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


def _markdown(table: dict[str, dict[str, float]]) -> str:
    columns = ["ndcg@10", "recall@10", "hit@10", "ndcg@20", "recall@20", "hit@20"]
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, metrics in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{metrics[c]:.4f}" for c in columns) + " |")
    return "\n".join(lines) + "\n"


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
