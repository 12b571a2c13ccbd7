"""`aisle serve up|down|status|sandbox`, `aisle promote MODEL`, `aisle rollback MODEL`: the
blue-green cluster from the command line (the Airflow promotion task calls the same functions).
Everything that changes or reads the cluster needs AISLE_ADMIN_TOKEN."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from aisle.cli.common import DataDir, console, fail
from core.settings import Settings, get_settings

serve_app = typer.Typer(
    help="The serving cluster: a gateway and blue/green BentoML slots per model.",
    no_args_is_help=True,
)


class Model(StrEnum):
    recommender = "recommender"
    pricing = "pricing"


def _admin(settings: Settings):
    from serving.admin import AdminRefused, GatewayAdmin

    try:
        return GatewayAdmin(settings)
    except AdminRefused as exc:
        raise fail(f"{exc} (401: refused)") from None


@serve_app.command("up")
def serve_up(data_dir: DataDir = None) -> None:
    """Start the gateway and put each model's champion (else its challenger) live."""
    from serving.admin import AdminRefused
    from serving.cluster import ClusterError, up

    settings = get_settings(data_dir=data_dir)
    _admin(settings)
    try:
        lives = up(settings, on_step=lambda m: console.print(f"[dim]{m}[/dim]"))
    except (ClusterError, AdminRefused) as exc:
        raise fail(str(exc)) from None
    for live in lives:
        if live.colour:
            console.print(
                f"[green]✓[/green] {live.model} version {live.version} ({live.note}) "
                f"live in {live.colour}"
            )
        else:
            console.print(f"[yellow]-[/yellow] {live.model}: {live.note}")
    console.print(f"endpoints: {settings.gateway_url}/recommend, {settings.gateway_url}/price")


@serve_app.command("down")
def serve_down(data_dir: DataDir = None) -> None:
    """Stop every slot and the gateway."""
    from serving.cluster import down

    settings = get_settings(data_dir=data_dir)
    _admin(settings)
    down(settings)
    console.print("[green]✓[/green] stopped")


@serve_app.command("status")
def serve_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw status.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Both colours of both models: live or idle, version, readiness, last 10 s of traffic."""
    from serving.admin import AdminRefused

    settings = get_settings(data_dir=data_dir)
    try:
        status = _admin(settings).status()
    except AdminRefused as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(status, indent=2))
        return
    table = Table(
        "model",
        "colour",
        "role",
        "version",
        "ready",
        "req/s",
        "p50 ms",
        "p99 ms",
        "5xx",
        title=f"gateway {settings.gateway_url}",
    )
    for model, route in status.items():
        for colour, slot in route["colours"].items():
            if not slot["url"]:
                table.add_row(model, colour, "—", "", "", "", "", "", "")
                continue
            role = (
                "[bold green]live[/]" if slot["live"] else ("shadow" if slot["shadow"] else "idle")
            )
            t = slot["last_10s"]
            table.add_row(
                model,
                colour,
                role,
                str(slot["version"]),
                _yes(slot["ready"]),
                f"{t['per_second']:.0f}",
                _ms(t["p50_ms"]),
                _ms(t["p99_ms"]),
                str(t["errors"]),
            )
    console.print(table)


def promote(
    model: Annotated[Model, typer.Argument(help="Which model.")],
    version: Annotated[
        str | None, typer.Option(help="Registry version [default: the challenger alias].")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Blue-green promotion: idle colour, smoke, shadow, flip, analysis (rolls back on a breach),
    then the `champion` alias. Every step goes to the audit log."""
    outcome = _run(lambda p: p.promote(model.value, version), data_dir)
    colour = {"promoted": "green", "unchanged": "yellow"}.get(outcome.result, "red")
    console.print(
        f"[{colour}]{outcome.result}[/]: {model.value} version {outcome.version} "
        f"(was {outcome.previous_version}) — {outcome.reason}"
    )
    for check in outcome.checks:
        mark = "[green]✓[/]" if check["passed"] else "[red]✗[/]"
        figures = {k: v for k, v in check.items() if k not in ("check", "passed", "problems")}
        console.print(f"  {mark} {check['check']}: {figures}")
        for problem in check["problems"]:
            console.print(f"      {problem}")
    if outcome.result in ("rejected", "rolled_back"):
        raise typer.Exit(code=2)


def rollback(
    model: Annotated[Model, typer.Argument(help="Which model.")],
    data_dir: DataDir = None,
) -> None:
    """Send the model's traffic back to the other colour at once (and the champion alias)."""
    outcome = _run(lambda p: p.rollback(model.value), data_dir)
    console.print(
        f"[green]✓[/green] {model.value}: version {outcome.version} live again in "
        f"{outcome.colour} (was {outcome.previous_version})"
    )


def _run(action, data_dir):
    from serving.admin import AdminRefused
    from serving.deploy import promoter
    from serving.promotion import PromotionError

    settings = get_settings(data_dir=data_dir)
    _admin(settings)
    try:
        return action(promoter(settings))
    except (AdminRefused, PromotionError) as exc:
        raise fail(str(exc)) from None


def _yes(value) -> str:
    return {True: "[green]yes[/]", False: "[red]no[/]"}.get(value, "?")


def _ms(value) -> str:
    return "" if value is None else f"{value:.1f}"
