"""What every `aisle` command shares: the console, common options, the error exit."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

# Piped or logged output gets room for the summary table instead of 80 truncated columns.
console = Console(width=None if sys.stdout.isatty() else 130)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Root of the local stores [env: AISLE_DATA_DIR; default: data]."
    ),
]
Flow = Annotated[
    str,
    typer.Argument(
        help="`interactions` (events + items, the recommender's) or `sales` (weekly sales + "
        "items + stores, the pricing model's)."
    ),
]


def fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


Start = Annotated[datetime, typer.Option(help="Start of the data interval (inclusive), UTC.")]
End = Annotated[datetime, typer.Option(help="End of the data interval (exclusive), UTC.")]
