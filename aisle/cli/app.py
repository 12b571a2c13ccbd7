"""The `aisle` command: every pipeline stage as a command, the same functions the DAGs call.
One module per command group (data, features, train, drift, price, serve, experiment, stack,
system); this one assembles them and is the entry point."""

from __future__ import annotations

import os
import sys

import typer

from aisle.cli.data import data_app, etl, forget, replay_command, simulate_command, summary
from aisle.cli.drift import drift_app
from aisle.cli.experiment import experiment_app
from aisle.cli.features import features_app
from aisle.cli.notices import hide_library_notices
from aisle.cli.price import price
from aisle.cli.serve import promote, rollback, serve_app
from aisle.cli.shop import shop
from aisle.cli.stack import demo, stack_app
from aisle.cli.system import airflow, show_settings
from aisle.cli.train import recommend, train_app

app = typer.Typer(
    help="Aisle: MLOps for an online shop's recommender and pricing models.\n\n"
    "Data flows from a source (MovieLens-100k, Dominick's orange juice, the shop simulator, or a "
    "shop's own export) through the raw landing zone and the ETL into curated, validated "
    "partitions, run by Airflow DAGs. Settings come from AISLE_* environment variables (or a "
    ".env file); `aisle settings` shows them.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(data_app, name="data")
app.command("etl")(etl)
app.command("replay")(replay_command)
app.command("summary")(summary)
app.command("simulate")(simulate_command)
app.command("forget")(forget)
app.add_typer(features_app, name="features")
app.add_typer(train_app, name="train")
app.add_typer(drift_app, name="drift")
app.command("recommend")(recommend)
app.command("price")(price)
app.add_typer(serve_app, name="serve")
app.command("promote")(promote)
app.command("rollback")(rollback)
app.add_typer(experiment_app, name="experiment")
app.add_typer(stack_app, name="stack")
app.command("demo")(demo)
app.command("shop")(shop)
app.command("settings")(show_settings)
app.command("airflow", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    airflow
)


def main() -> None:
    """The `aisle` command. Library notices are hidden here (`hide_library_notices`), not when
    the app is imported, so tests that import it see every warning. It ends without the
    interpreter's teardown, where DuckDB's bindings (loaded by Feast) print nanobind "leaked
    instance" reports that would close every command's output; everything the command wrote is
    flushed first, and the exit code is kept."""
    import logging

    hide_library_notices()
    code = 0
    try:
        app()
    except SystemExit as done:
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
        code = done.code if isinstance(done.code, int) else int(done.code is not None)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
