"""The pricing model's stages, one code path for the DAG, the CLI and the tests.

    stages.STAGES.build_training_set(end)   -> training set path (weekly windows, dataset.py)
    train_step(path, config, settings)      -> MLflow run id, checkpoint, test RMSE
    stages.STAGES.register(trained)         -> registered version (no alias yet), through
                                               load_checkpoint, log_model and version_tags here
    gate.gate_step(training_set, version)   -> passed: alias `challenger` (gate.py)

`train_step` tunes on the valid weeks, fits the ensemble, scores it and the references (a)-(e) on
the test weeks, and logs params, the loss and tuning curves, the evaluation table, the
elasticities per item x store, a price-response plot for a few items and lineage to MLflow.
Registration logs the checkpoint as the run's pyfunc model with its signature, registers it
as a new version of `pricing`; the gate (gate.py) gives it the alias `challenger` or not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.settings import Settings, get_settings
from training.tracking import run_config

from .dataset import PricingData
from .model import PricingConfig
from .train import FitProgress, TrainResult, pick_device, train_pricing

log = logging.getLogger(__name__)

EXPERIMENT = "pricing"
CHECKPOINT_FILE = "pricing.pt"
RESPONSE_ITEMS = 4


def train_step(
    training_set: str | Path,
    config: PricingConfig | dict[str, Any] | None = None,
    settings: Settings | None = None,
    device: str | None = None,
    on_fit: Callable[[FitProgress], None] | None = None,
    references: bool = True,
) -> dict[str, Any]:
    """Train and evaluate one model in a new MLflow run; returns the run id, checkpoint, metrics.

    `config` may be a dict of PricingConfig fields to change (a DAG's params; None keeps the
    default)."""
    import mlflow

    from training.tracking import lineage as run_lineage
    from training.tracking import use_tracking

    from .evaluate import OURS, elasticity_distribution, elasticity_table, holdout_table

    settings = settings or get_settings()
    config = pricing_config(config, settings)
    training_set = Path(training_set)
    data = PricingData.load(training_set)
    windows = data.metadata["windows"]
    lineage = run_lineage(settings, data.metadata, training_set)
    use_tracking(settings, EXPERIMENT)
    with mlflow.start_run(run_name=f"{lineage['dataset']} {windows['end'][:10]}") as run:
        mlflow.set_tags({f"aisle.{k}": v for k, v in lineage.items()})
        mlflow.log_params(
            {
                **config.to_dict(),
                **{f"rows_{role}": n for role, n in data.metadata["rows"].items()},
                "items": data.fit.item_id.nunique(),
                "stores": data.fit.store_id.nunique(),
                "device": str(pick_device(device)),
            }
        )

        def logged(progress: FitProgress) -> None:
            if progress.valid_rmse is not None:
                mlflow.log_metric("valid_rmse", progress.valid_rmse, step=progress.index)
            mlflow.log_metric(f"{progress.stage}_loss", progress.loss, step=progress.index)
            if on_fit is not None:
                on_fit(progress)

        result = train_pricing(data.fit, data.valid, config, device, on_fit=logged)
        model = result.model
        train_rows = pd.concat([data.fit, data.valid], ignore_index=True)
        table = holdout_table(model, train_rows, data.test, references=references)
        pairs = elasticity_table(model, data.test)
        distribution = elasticity_distribution(pairs)
        test_rmse = table[OURS]["rmse"]
        share_negative = float((pairs.elasticity < 0).mean())
        # the structure the valid weeks chose for this shape of shop (model.STRUCTURES)
        mlflow.log_param("structure", result.structure)
        mlflow.set_tag("aisle.pricing.structure", result.structure)
        mlflow.log_metrics(
            {
                "test_rmse": test_rmse,
                "best_l2": result.l2,
                "train_seconds": result.seconds,
                "elasticity_median": float(pairs.elasticity.median()),
                "elasticity_share_negative": share_negative,
            }
        )
        record = {
            "protocol": "weekly holdout: RMSE of log(1 + units) on the test weeks",
            "windows": windows,
            "rows": data.metadata["rows"],
            "models": table,
            "valid_rmse_by_l2": {str(k): v for k, v in result.valid_rmse.items()},
            "structure": result.structure,
            "valid_rmse_by_structure": _by_structure(result),
            "elasticity_by_item": distribution,
        }
        mlflow.log_dict(record, "evaluation/table.json")
        mlflow.log_text(_markdown(table), "evaluation/table.md")
        mlflow.log_text(pairs.to_csv(index=False), "evaluation/elasticities.csv")
        mlflow.log_figure(_training_curves(result), "training_curves.png")
        mlflow.log_figure(_price_response(model, data.test), "price_response.png")

        metadata = {
            "metrics": {"test_rmse": test_rmse, "valid_rmse": result.valid_rmse[result.l2]},
            "l2": result.l2,
            "structure": result.structure,
            "elasticity_by_item": distribution,
            "lineage": {**lineage, "mlflow_run_id": run.info.run_id},
        }
        checkpoint = model.save(training_set.with_name(CHECKPOINT_FILE), metadata)
        mlflow.log_artifact(str(checkpoint), "checkpoint")
    log.info("trained %s: l2 %g, test RMSE %.4f", run.info.run_id, result.l2, test_rmse)
    return {
        "run_id": run.info.run_id,
        "checkpoint": str(checkpoint),
        "test_rmse": test_rmse,
        "l2": result.l2,
        "structure": result.structure,
        "elasticity_share_negative": share_negative,
    }


def load_checkpoint(checkpoint: str | Path):
    """The trained pricing model, for registration (training/stages.py `register_step`)."""
    from .predict import PricingModel

    return PricingModel.load(checkpoint)


def log_model(checkpoint: Path, model) -> Any:
    """Log the checkpoint as the active run's pyfunc model (two test rows as its input example),
    registered as a new version."""
    from .registry import log_pricing

    test = PricingData.load(Path(model.metadata["lineage"]["training_set"])).test
    return log_pricing(checkpoint, test.head(2))


def version_tags(model) -> dict[str, Any]:
    """The metric and structure a registered version carries beside its lineage."""
    tags = {"test_rmse": round(model.metadata["metrics"]["test_rmse"], 4)}
    if "structure" in model.metadata:  # checkpoints from before the structures have none
        tags["structure"] = model.metadata["structure"]
    return tags


def pricing_config(
    config: PricingConfig | dict[str, Any] | None = None, settings: Settings | None = None
) -> PricingConfig:
    """The configuration a run trains with: the default, the setting `training_config.pricing`,
    then `config` (a DAG's params or the CLI's options)."""
    if isinstance(config, dict) and config.get("l2_grid") is not None:
        config = {**config, "l2_grid": [float(v) for v in config["l2_grid"]]}
    return run_config(PricingConfig(), config, "pricing", settings or get_settings())


def _by_structure(result: TrainResult) -> dict[str, dict[str, float]]:
    """structure -> l2 -> valid RMSE, with string keys (JSON)."""
    return {
        name: {str(l2): score for l2, score in scores.items()}
        for name, scores in result.valid_rmse_by_structure.items()
    }


def _markdown(table: dict[str, dict[str, float]]) -> str:
    lines = ["| model | RMSE log units | rows |", "|---|---|---|"]
    for name, scores in table.items():
        lines.append(f"| {name} | {scores['rmse']:.4f} | {scores['rows']} |")
    return "\n".join(lines) + "\n"


def _training_curves(result: TrainResult):
    from matplotlib.figure import Figure  # no pyplot: no global figure state in a worker

    figure = Figure(figsize=(9, 3.5))
    left, right = figure.subplots(1, 2)
    for fit in result.fits:
        if fit.stage == "member":
            left.plot(fit.trace, label=f"member {fit.index}")
    left.set_yscale("log")
    left.set_xlabel("L-BFGS evaluation")
    left.set_ylabel("penalised training loss")
    left.set_title("Ensemble fits")
    left.legend(fontsize=7)
    grid = sorted(result.valid_rmse)
    right.plot(grid, [result.valid_rmse[g] for g in grid], "o-", label="best structure")
    for name, scores in result.valid_rmse_by_structure.items():
        tried = sorted(scores)
        right.plot(tried, [scores[g] for g in tried], "x", label=name)
    kept = f"kept: {result.structure}, l2={result.l2:g}"
    right.axvline(result.l2, color="grey", linestyle="--", label=kept)
    right.set_xscale("log")
    right.set_xlabel("l2")
    right.set_ylabel("valid RMSE (rolling folds)")
    right.set_title("Tuning")
    right.legend(fontsize=7)
    figure.tight_layout()
    return figure


def _price_response(model, test: pd.DataFrame):
    """Units and profit against price for the best-selling items' rows of the last test week."""
    from matplotlib.figure import Figure

    last = test[test.event_timestamp == test.event_timestamp.max()]
    last = last[
        last.item_id.isin(model.design.item_ids) & last.store_id.isin(model.design.store_ids)
    ]
    rows = (
        last.sort_values("units", ascending=False).drop_duplicates("item_id").head(RESPONSE_ITEMS)
    )
    figure = Figure(figsize=(3.2 * max(len(rows), 1), 3.4))
    axes = np.atleast_1d(figure.subplots(1, max(len(rows), 1)))
    for axis, (_, row) in zip(axes, rows.iterrows(), strict=False):
        frame = row.to_frame().T.infer_objects()
        prices = np.linspace(0.6, 1.6, 60) * float(row.price)
        mean, members = model._curve(frame, prices)
        axis.fill_between(prices, members.min(0), members.max(0), alpha=0.25, label="ensemble")
        axis.plot(prices, mean, label="expected units")
        axis.axvline(float(row.price), color="grey", linestyle=":", label="shelf price")
        axis.scatter([float(row.price)], [float(row.units)], color="black", zorder=3, label="sold")
        axis.set_title(f"item {row.item_id} in store {row.store_id}", fontsize=9)
        axis.set_xlabel("price")
        axis.set_ylabel("units")
    axes[0].legend(fontsize=7)
    figure.suptitle("Price response (last test week)")
    figure.tight_layout()
    return figure
