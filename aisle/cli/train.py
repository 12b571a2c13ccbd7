"""`aisle train ...` and `aisle recommend ...`: the training DAGs' stages by hand, and a look at
what the registered recommender suggests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from aisle.cli.common import DataDir, End, console, fail
from core.settings import Settings, get_settings

if TYPE_CHECKING:
    from datetime import datetime

    from rich.progress import Progress

    from training.stages import ModelStages

train_app = typer.Typer(help="Train a model as its training DAG does.", no_args_is_help=True)


@train_app.command("recommender")
def recommender(
    end: End,
    epochs: Annotated[
        int | None, typer.Option(help="Fine-tuning epochs at most (0: closed form only).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cuda or cpu (default: cuda if any).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Training set (Feast, protocol B) → data checks → train → MLflow run → register → gate
    against the champion (passed: `challenger`)."""
    from training.recommender.train import EpochResult
    from training.stages import model_stages

    settings = get_settings(data_dir=data_dir)
    stages = model_stages("recommender")
    path = _checked_training_set(stages, end, settings)
    config = {"epochs": epochs}
    total = (epochs if epochs is not None else _default_epochs()) + 1
    with _training_bar("epoch") as progress:
        bar = progress.add_task("train", total=total, last="")

        def on_epoch(epoch: EpochResult) -> None:
            progress.update(
                bar, completed=epoch.epoch + 1, last=f"valid NDCG@10 {epoch.valid['ndcg@10']:.4f}"
            )

        trained = stages.train(path, config, settings, device=device, on_epoch=on_epoch)
        progress.update(bar, completed=total)
    registered = stages.register(trained, settings)
    kept = f"best epoch {trained['best_epoch']}" if trained["best_epoch"] is not None else ""
    metrics = Table("test metric", "value", title=f"{trained['form']} form {kept}".strip())
    for name, value in trained["test"].items():
        metrics.add_row(name, f"{value:.4f}")
    console.print(metrics)
    _gate("recommender", registered, settings)


def _training_bar(unit: str) -> Progress:
    """A progress bar of a training run, counting `unit`s (epochs, fits) with the last result."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    last = TextColumn(unit + " {task.completed}/{task.total} {task.fields[last]}")
    return Progress(
        TextColumn("[bold]training"), BarColumn(), last, TimeElapsedColumn(), console=console
    )


def _checked_training_set(stages: ModelStages, end: datetime, settings: Settings) -> str:
    """The training DAG's training_set and validate tasks: stop with the reason or every failed
    check."""
    from monitoring.data_checks import TrainingDataRejected, validate_step
    from training.training_sets import TrainingSetEmpty

    try:
        path = stages.build_training_set(end, settings)
    except (TrainingSetEmpty, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print(f"[green]✓[/green] training set {path}")
    try:
        checked = validate_step(stages.name, path, settings)
    except TrainingDataRejected as rejected:
        raise fail(str(rejected)) from None
    console.print(f"[green]✓[/green] {checked['checks']} data checks passed ({checked['html']})")
    return path


def _gate(model: str, registered: dict, settings) -> None:
    """The training DAG's gate task, and what it decided."""
    console.print(
        f"[green]✓[/green] registered {registered['registered_model']} version "
        f"{registered['version']} (run {registered['run_id']}, tracking {settings.tracking_uri})"
    )
    from training.stages import model_stages

    decision = model_stages(model).gate(registered, settings)
    table = Table("model", *decision["metrics"]["challenger"], title="gate: the same holdout")
    for name, values in decision["metrics"].items():
        if name != "rows":
            table.add_row(name, *(f"{v:.4f}" for v in values.values()))
    console.print(table)
    for test, ok in decision["behaviour"].items():
        console.print(f"  {'[green]✓' if ok else '[red]✗'}[/] {test}")
    if decision["passed"]:
        console.print(f"[green]✓[/green] gate passed: version {decision['version']} is @challenger")
        return
    for reason in decision["reasons"]:
        console.print(f"  [red]✗[/red] {reason}")
    raise fail(f"gate rejected version {decision['version']}; the champion stays")


def _default_epochs() -> int:
    from training.recommender.model import RecommenderConfig

    return RecommenderConfig().epochs


@train_app.command("pricing")
def pricing(
    end: End,
    members: Annotated[
        int | None, typer.Option(min=1, help="Bootstrap ensemble size (default: 5).")
    ] = None,
    max_iter: Annotated[
        int | None, typer.Option(min=1, help="L-BFGS iterations per fit (default: 300).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cuda or cpu (default: cuda if any).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Training set (Feast `pricing_v1`, weekly windows) → tune l2 → bootstrap ensemble →
    MLflow run → register → gate against the champion (passed: `challenger`)."""
    from training.pricing.train import FitProgress
    from training.stages import model_stages

    settings = get_settings(data_dir=data_dir)
    _check_device(device)
    config = {"members": members, "max_iter": max_iter}
    stages = model_stages("pricing")
    path = _checked_training_set(stages, end, settings)
    total = _pricing_fits(config, settings)
    with _training_bar("fit") as progress:
        bar = progress.add_task("train", total=total, last="")

        def on_fit(fit: FitProgress) -> None:
            if fit.stage == "tune":
                last = f"tune l2={fit.l2:g}: valid RMSE {fit.valid_rmse:.4f}"
            else:
                last = f"member {fit.index}/{fit.total}: loss {fit.loss:.4f}"
            progress.update(bar, advance=1, last=last)

        try:
            trained = stages.train(path, config, settings, device=device, on_fit=on_fit)
        except ValueError as exc:  # TrainingSetEmpty is one
            raise fail(str(exc)) from None
        progress.update(bar, completed=total)
    registered = stages.register(trained, settings)
    summary = Table("metric", "value", title="pricing model")
    summary.add_row("test RMSE, log(1 + units)", f"{trained['test_rmse']:.4f}")
    summary.add_row("l2 (tuned on the valid weeks)", f"{trained['l2']:g}")
    summary.add_row(
        "negative own-price elasticities", f"{trained['elasticity_share_negative']:.1%}"
    )
    console.print(summary)
    _gate("pricing", registered, settings)


def _pricing_fits(config: dict[str, Any], settings: Settings) -> int:
    """Fits a training run makes: one per l2 of the grid, then one per ensemble member."""
    from training.pricing.pipeline import pricing_config

    resolved = pricing_config(config, settings)
    return len(resolved.l2_grid) + resolved.members


def _check_device(device: str | None) -> None:
    if device is None:
        return
    kind = device.split(":", 1)[0]
    if kind not in ("cpu", "cuda"):
        raise fail(f"--device: {device!r} is neither cpu nor cuda")
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise fail("--device: cuda was asked for, but torch sees no GPU here; use --device cpu")


def recommend(
    history: Annotated[list[str] | None, typer.Argument(help="Item ids the user touched.")] = None,
    k: Annotated[int, typer.Option(help="How many items.")] = 10,
    category: Annotated[str | None, typer.Option(help="Only items of this category.")] = None,
    alias: Annotated[str, typer.Option(help="Registry alias to ask.")] = "challenger",
    data_dir: DataDir = None,
) -> None:
    """What the registered recommender suggests for a history (empty: the cold-start list)."""
    from training.recommender.predict import BadRequest
    from training.recommender.registry import MODEL_NAME, load_recommender
    from training.tracking import point_at_store

    settings = get_settings(data_dir=data_dir)
    point_at_store(settings)
    try:
        model = load_recommender(f"models:/{MODEL_NAME}@{alias}")
    except Exception as exc:  # mlflow raises its own types for a missing model or alias
        raise fail(f"no {MODEL_NAME}@{alias} in {settings.tracking_uri}: {exc}") from None
    try:
        answer = model.recommend(history or [], k=k, category=category)
    except BadRequest as exc:
        raise fail(str(exc)) from None
    title = "fallback: " + answer.fallback_reason if answer.fallback else "personal"
    table = Table("item", "name", "score", "reason", title=title)
    for item in answer.items:
        table.add_row(item.item_id, item.name or "", f"{item.score:.3f}", item.reason)
    console.print(table)
    for note in answer.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
