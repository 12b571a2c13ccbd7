"""`aisle settings` and `aisle airflow`: the settings in effect, and Airflow in Aisle's
environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer
from rich.table import Table

from aisle.cli.common import DataDir, console
from core.settings import get_settings


def show_settings(data_dir: DataDir = None) -> None:
    """Show the settings in effect and the environment variable behind each."""
    settings = get_settings(data_dir=data_dir)
    table = Table("setting", "value", "env")
    for name, value in settings.model_dump().items():
        table.add_row(name, str(value), f"AISLE_{name.upper()}")
    console.print(table)


def airflow(ctx: typer.Context, data_dir: DataDir = None) -> None:
    """Run an `airflow` command in Aisle's Airflow environment, e.g. `aisle airflow standalone`."""
    from aisle import airflow_env

    env = airflow_env.subprocess_env(get_settings(data_dir=data_dir))
    binary = str(Path(sys.executable).parent / "airflow")
    raise typer.Exit(subprocess.call([binary, *ctx.args], env=env))
