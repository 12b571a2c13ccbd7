"""`aisle drift ...`: the drift_monitor DAG's check by hand over a span of curated data, and the
drift timeline plot."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from aisle.cli.common import DataDir, End, Start, console, fail
from core.settings import get_settings

drift_app = typer.Typer(help="Drift checks (Evidently) and their timeline.", no_args_is_help=True)
Model = Annotated[str, typer.Argument(help="recommender or pricing")]


@drift_app.command("check")
def check(
    model: Model,
    start: Start,
    end: End,
    every: Annotated[
        int | None,
        typer.Option(help="Days per interval [default: 1 for recommender, 7 for pricing]."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Check each interval of [start, end) against the champion's training window, as the
    drift_monitor DAG does (reports, MLflow, timeline; retrain decisions with the cool-down)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from monitoring.retrain import check_intervals_step
    from training.stages import all_models

    if model not in all_models():
        raise fail(f"unknown model {model!r}; one of {', '.join(all_models())}")
    if end <= start:
        raise fail(f"--end {end.date()} is not after --start {start.date()}")
    settings = get_settings(data_dir=data_dir)
    step = timedelta(days=every or (1 if model == "recommender" else 7))
    flow = all_models()[model].table
    table = Table(
        "interval", "drift", "columns", "realised performance [band]", "retrain",
        title=f"{model} drift and performance",
    )  # fmt: skip
    intervals = []
    when = start
    while when < end:
        intervals.append((when, min(when + step, end)))
        when = intervals[-1][1]
    with Progress(
        TextColumn("[bold]drift checks"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        bar = progress.add_task("check", total=len(intervals))
        for first, until in intervals:
            interval = {"flow": flow, "start": first.isoformat(), "end": until.isoformat()}
            (result,) = check_intervals_step([interval], settings)
            table.add_row(
                str(first.date()),
                "[red]yes[/red]" if result["drift"] else "no",
                ", ".join(result["drifted_columns"]),
                _performance(result.get("performance")),
                f"[bold]yes[/bold]: {result['reason']}" if result["retrain"] else result["reason"],
            )
            progress.advance(bar)
    console.print(table)


def _performance(performance: dict | None) -> str:
    """The champion's realised metric and its band, red when it dropped; '-' without one."""
    from monitoring.performance import performance_text

    text = performance_text(performance)
    if not text:
        return "-"
    if not performance.get("judged"):
        return text + " (not judged)"
    return f"[red]{text}[/red]" if performance.get("dropped") else text


@drift_app.command("timeline")
def timeline(model: Model, data_dir: DataDir = None) -> None:
    """Plot each column's drift score over its threshold and the champion's realised metric
    against its band per interval, with retrains (and their reasons) and promotions (PNG and
    HTML beside the model's drift reports)."""
    from monitoring.timeline import plot

    settings = get_settings(data_dir=data_dir)
    try:
        paths = plot(settings, model)
    except FileNotFoundError as missing:
        raise fail(str(missing)) from None
    console.print(f"[green]✓[/green] {paths['png']}\n[green]✓[/green] {paths['html']}")
