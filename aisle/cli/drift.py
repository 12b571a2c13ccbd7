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
    table = Table("interval", "drift", "columns", "retrain", title=f"{model} drift")
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
                "yes" if result["retrain"] else result["reason"],
            )
            progress.advance(bar)
    console.print(table)


@drift_app.command("timeline")
def timeline(model: Model, data_dir: DataDir = None) -> None:
    """Plot the share of drifted columns per interval, with retrain and promotion marks (PNG and
    HTML beside the model's drift reports)."""
    from monitoring.timeline import plot

    settings = get_settings(data_dir=data_dir)
    try:
        paths = plot(settings, model)
    except FileNotFoundError as missing:
        raise fail(str(missing)) from None
    console.print(f"[green]✓[/green] {paths['png']}\n[green]✓[/green] {paths['html']}")
