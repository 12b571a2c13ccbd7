"""`aisle shop`: the simulated shop's shoppers and shelves against the running gateway, responding
to its answers as the simulator's world would (aisle.responsive_shop), then what they saw beside
what the world expected of each model version's answers."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from aisle.cli.common import DataDir, console, fail
from core.settings import get_settings


def shop(
    rate: Annotated[float, typer.Option(help="Requests a second, visitors and shelves.")] = 20.0,
    minutes: Annotated[float, typer.Option(help="How long the shop stays open.")] = 5.0,
    day_seconds: Annotated[
        float, typer.Option(help="Real seconds of a simulated day: each shelf is priced once.")
    ] = 60.0,
    seed: Annotated[int, typer.Option(help="Same seed, same visitors and draws.")] = 7,
    shelves: Annotated[int, typer.Option(help="Item x store shelves priced each day.")] = 200,
    data_dir: DataDir = None,
) -> None:
    """Open the simulated shop on the running gateway: visitors ask for recommendations and view,
    cart and buy by the simulator's world; shelves ask for a price each simulated day and sell
    at it. Events go to POST /events with the answers' request ids; each answer's expected
    outcome is kept, so the summary shows expected beside observed per model version."""
    import httpx
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from aisle.responsive_shop import ResponsiveShop, compare

    settings = get_settings(data_dir=data_dir)
    try:
        responsive = ResponsiveShop(
            settings, per_second=rate, seed=seed, day_seconds=day_seconds, shelves=shelves
        )
        httpx.get(f"{settings.gateway_url}/healthz", timeout=5).raise_for_status()
    except ValueError as exc:
        raise fail(str(exc)) from None
    except httpx.HTTPError as exc:
        raise fail(
            f"no gateway at {settings.gateway_url} ({exc}): start it with `aisle stack up` or "
            "`aisle serve up`"
        ) from None
    seconds = minutes * 60
    with Progress(
        TextColumn("[bold]shop open"), BarColumn(), TextColumn("{task.fields[seen]}"),
        TimeRemainingColumn(), console=console,
    ) as progress:  # fmt: skip
        bar = progress.add_task("shop", total=seconds, seen="")
        began = time.monotonic()
        responsive.start()
        try:
            while responsive.running and (elapsed := time.monotonic() - began) < seconds:
                seen = responsive.summary()
                answers = ", ".join(f"{n} {kind}" for kind, n in seen["answers"].items())
                events = seen["events"].get("accepted", 0)
                progress.update(bar, completed=elapsed, seen=f"day {seen['days']}: {answers}, "
                                f"{events} events")  # fmt: skip
                time.sleep(0.25)
        finally:
            summary = responsive.stop()
            progress.update(bar, completed=seconds)

    requests = Table("path", "status", "requests", title="requests")
    for path, statuses in summary["requests"].items():
        for status, n in statuses.items():
            requests.add_row(path, "no answer" if status == "0" else status, str(n))
    console.print(requests)
    events = summary["events"]
    console.print(
        f"events: {events.get('accepted', 0)} accepted, {events.get('rejected', 0)} rejected, "
        f"{events.get('lost', 0)} lost; {summary['days']} simulated days of week "
        f"{summary['week']}"
    )
    versions = compare(responsive.truth())
    if versions.empty:
        console.print("[yellow]no answers: nothing to compare[/yellow]")
        return
    columns = ("clicks expected", "clicks observed", "purchases / units expected", "observed")
    table = Table("model", "version", "answers", *columns, title="expected vs observed")
    for row in versions.itertuples():
        bought = "purchases" if row.kind == "recommendations" else "units"
        table.add_row(
            row.kind, str(row.model_version), str(row.answers),
            *(_number(getattr(row, c, None)) for c in ("click", "drawn_click")),
            *(_number(getattr(row, c)) for c in (bought, f"drawn_{bought}")),
        )  # fmt: skip
    console.print(table)


def _number(value: float | None) -> str:
    return "" if value is None or value != value else f"{value:,.1f}"
