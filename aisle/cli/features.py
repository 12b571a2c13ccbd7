"""`aisle features ...`: the features stage by hand, the same functions the features DAG runs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from aisle.cli.common import DataDir, End, Flow, Start, console, fail
from core.settings import get_settings

features_app = typer.Typer(
    help="The feature store: build feature tables, register them in Feast, serve them online.",
    no_args_is_help=True,
)


@features_app.command("build")
def build(flow: Flow, start: Start, end: End, data_dir: DataDir = None) -> None:
    """Write the flow's daily feature tables for [start, end) from the curated zone."""
    from features.pipeline import build_step

    try:
        built = build_step(flow, start, end, get_settings(data_dir=data_dir))
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    parts = ", ".join(f"{view} {n}" for view, n in built["partitions"].items())
    console.print(f"[green]✓[/green] {built['dataset']} {built['interval']}: {parts} partitions")


@features_app.command("apply")
def apply(
    force: Annotated[bool, typer.Option(help="Apply even if the registry is up to date.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Register the Feast definitions (`feast apply`) if they changed."""
    from features.pipeline import apply_step

    applied = apply_step(get_settings(data_dir=data_dir), force=force)
    state = "applied" if applied["changed"] else "already up to date"
    console.print(f"[green]✓[/green] definitions {state} ({applied['fingerprint'][:12]})")
    console.print("  " + ", ".join(applied["objects"]))
    if applied["removed"]:
        console.print("  removed: " + ", ".join(applied["removed"]))


@features_app.command("materialize")
def materialize(flow: Flow, start: Start, end: End, data_dir: DataDir = None) -> None:
    """Load the flow's features stamped within [start, end] into the online store."""
    from features.pipeline import materialize_step

    done = materialize_step(flow, start, end, get_settings(data_dir=data_dir))
    console.print(f"[green]✓[/green] {done['interval']}: {', '.join(done['views']) or 'nothing'}")


@features_app.command("run")
def run(flow: Flow, start: Start, end: End, data_dir: DataDir = None) -> None:
    """build, apply and materialize for one interval: what one features DAG run does."""
    from features.pipeline import run_features

    try:
        result = run_features(flow, start, end, get_settings(data_dir=data_dir))
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print_json(json.dumps(result))


@features_app.command("online")
def online(
    view: Annotated[str, typer.Argument(help="A feature view, e.g. user_activity_fv.")],
    ids: Annotated[
        list[str],
        typer.Argument(help="Entity ids; for item x store views `ITEM:STORE`, e.g. 1:2."),
    ],
    data_dir: DataDir = None,
) -> None:
    """Look entities up in the online store, as serving does (unknown ones are flagged)."""
    from features.online import FeaturesUnavailable, online_features

    settings = get_settings(data_dir=data_dir)
    entities: list = [
        dict(zip(("item_id", "store_id"), i.split(":", 1), strict=True)) if ":" in i else i
        for i in ids
    ]
    try:
        found = online_features(settings, view, entities)
    except (FeaturesUnavailable, ValueError) as exc:
        raise fail(str(exc)) from None
    table = Table("feature", *[":".join(e.values()) for e in found.entities])
    table.add_row(
        "[dim]known[/dim]", *["yes" if k else "[red]never seen[/red]" for k in found.known]
    )
    table.add_row("[dim]as of[/dim]", *[str(t) if t else "" for t in found.as_of])
    for name, values in found.features.items():
        table.add_row(name, *[_short(v) for v in values])
    console.print(table)


def _short(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
