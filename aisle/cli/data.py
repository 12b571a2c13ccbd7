"""`aisle data`, `etl`, `replay`, `summary`, `simulate` and `forget`: data in, through the ETL,
and out again (a user's erasure)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aisle.cli.common import DataDir, End, Flow, Start, console
from aisle.cli.common import fail as _fail
from core.settings import BUILTIN_SOURCES, get_settings

data_app = typer.Typer(help="Fetch and prepare the built-in data sets.", no_args_is_help=True)


@data_app.command("fetch")
def data_fetch(
    source: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Which built-in source(s): {', '.join(BUILTIN_SOURCES)} [default: all]."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Prepare again even if already prepared.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Fetch the built-in data sets and prepare them as canonical parquet timelines.

    MovieLens-100k comes from the PyPI package recbole (installed by `make venv`); Dominick's
    orange juice from the Debian package r-cran-bayesm (`apt-get download`, unpacked into
    DATA_DIR/external, no root install); the simulator is generated from AISLE_SIMULATOR__*.
    """
    from features.sources.prepare import prepare

    settings = get_settings(data_dir=data_dir)
    for name in source or list(BUILTIN_SOURCES):
        if name not in BUILTIN_SOURCES:
            raise _fail(f"unknown source {name!r}; choose from {', '.join(BUILTIN_SOURCES)}")
        with console.status(f"preparing {name}"):
            try:
                manifest = prepare(settings, name, force=force)
            except (RuntimeError, FileNotFoundError) as exc:
                raise _fail(str(exc)) from None
        counts = ", ".join(f"{t} {n:,}" for t, n in manifest["tables"].items())
        console.print(f"[green]✓[/green] {name}: {counts}  ({settings.sources_dir / name})")


def etl(
    flow: Flow,
    start: Start,
    end: End,
    source: Annotated[
        str | None,
        typer.Option(
            help="A built-in source, or the path of a CSV/parquet file in the canonical schema "
            "(or mapped onto it with --map) [env: AISLE_INTERACTIONS_SOURCE / AISLE_SALES_SOURCE]."
        ),
    ] = None,
    allow_extra_columns: Annotated[
        bool | None,
        typer.Option(help="Drop (and report) columns outside the schema instead of failing."),
    ] = None,
    column_map: Annotated[
        str | None,
        typer.Option(
            "--map",
            help="The export's own column names: canonical=column pairs, e.g. "
            "user_id=customer_id,item_id=sku; ':value' is a constant for a column the export "
            "lacks (event_type=:purchase) [env: AISLE_COLUMN_MAP__INTERACTIONS / __SALES].",
        ),
    ] = None,
    map_file: Annotated[
        Path | None,
        typer.Option(help="The same mapping as a JSON, YAML or TOML object; --map adds to it."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Land one data interval of a flow and run the ETL on it (no Airflow needed).

    **Your own data**: point the flow's source at a file in the canonical schema (see the
    README) — `AISLE_INTERACTIONS_SOURCE=/exports/events.csv`, or `--source` here — and Aisle
    lands it verbatim into `raw/<file stem>/...`, validates every row, quarantines what fails
    with its reason, and writes curated partitions per day. Rows whose time falls outside the
    interval are quarantined, so give the interval the file covers, e.g.
    `aisle etl interactions --source events.csv --start 2024-01-01 --end 2024-07-01`.
    An export with other column names maps onto the schema with `--map` or `--map-file`,
    e.g. `--map user_id=customer_id,item_id=sku,event_type=:purchase` for an order log.
    """
    from features.column_map import ColumnMapError, load_map_file, parse_map
    from features.etl import NothingLandedError
    from features.ingest import ingest
    from features.reading import RawFileError

    overrides = {"data_dir": data_dir, "allow_extra_columns": allow_extra_columns}
    if source is not None:
        overrides[f"{flow}_source"] = source
    settings = get_settings(**overrides)
    if column_map is not None or map_file is not None:
        try:
            mapping = load_map_file(map_file) if map_file is not None else {}
            mapping |= parse_map(column_map or "")
        except ColumnMapError as exc:
            raise _fail(str(exc)) from None
        if settings.source_for(flow) in BUILTIN_SOURCES:
            raise _fail(
                f"--map and --map-file map a shop's export; the {flow} source "
                f"{settings.source_for(flow)!r} is built in and canonical (give --source FILE)"
            )
        # The options map the flow's event table (a shop's file holds that one table).
        tables = settings.column_map | {flow: settings.column_map.get(flow, {}) | mapping}
        settings = settings.model_copy(update={"column_map": tables})
    try:
        summaries = ingest(flow, start, end, settings)
    except (RawFileError, NothingLandedError, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    _print_summaries(summaries)


def replay_command(
    flow: Flow,
    start: Annotated[
        datetime | None, typer.Option(help="Replay from here [default: first event].")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option(help="Replay up to here [default: last event].")
    ] = None,
    features: Annotated[
        bool,
        typer.Option(help="Run the features DAG after each ingest run, as the scheduler would."),
    ] = True,
    data_dir: DataDir = None,
) -> None:
    """Replay a built-in source's timeline through the `ingest_<flow>` Airflow DAG.

    One real DAG run per data interval of the flow's schedule (AISLE_INTERACTIONS_SCHEDULE,
    AISLE_SALES_SCHEDULE), as if the shop were live, each followed by a run of the `features`
    DAG for that interval; every run is recorded in Airflow.
    """
    settings = get_settings(data_dir=data_dir)
    totals = _replay(settings, flow, start, end, features)
    console.print(
        f"[green]✓[/green] replayed {flow}: {totals['runs']} runs, {totals['rows_in']:,} rows in, "
        f"{totals['curated']:,} curated, {totals['quarantined']:,} quarantined, "
        f"{totals['duplicates']:,} duplicates"
    )
    _print_priceless(totals["purchases_without_price"])


def _replay(
    settings, flow: str, start: datetime | None, end: datetime | None, features: bool = True
) -> dict[str, int]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from aisle import airflow_env, replay

    airflow_env.configure(settings)
    try:
        planned = replay.plan(settings, flow, start, end)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    log_path = airflow_env.airflow_home(settings) / "logs" / f"replay_{flow}.log"
    counted = ("rows_in", "curated", "quarantined", "duplicates", "purchases_without_price")
    totals = dict.fromkeys(("runs", *counted), 0)
    with replay.output_to(log_path) as terminal:
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
            console=Console(file=terminal),
        )
        with progress:
            name = f"ingest_{flow}" + (" → features" if features else "")
            bar = progress.add_task(name, total=len(planned), last="")

            def on_run(run: replay.ReplayRun) -> None:
                totals["runs"] += 1
                for s in run.summaries:
                    if s["table"] == flow:
                        for key in counted:
                            totals[key] += int(s.get(key, 0))
                progress.update(bar, advance=1, last=f"{run.interval.key} {run.state}")

            try:
                replay.replay(settings, flow, start, end, on_run=on_run, features=features)
            except (RuntimeError, FileNotFoundError, ValueError) as exc:
                failure = exc
            else:
                failure = None
    if failure is not None:
        raise _fail(f"{failure} (Airflow's output: {log_path})")
    console.print(f"  Airflow's output: {log_path}")
    return totals


def summary(data_dir: DataDir = None) -> None:
    """Show what landed where: per dataset and table, runs, rows and the zones' folders."""
    from features.summary import feature_summary, zone_summary

    settings = get_settings(data_dir=data_dir)
    rows = zone_summary(settings)
    if not rows:
        console.print(f"nothing has been ingested under {settings.data_dir} yet")
        return
    table = Table(
        "dataset",
        "table",
        "runs",
        "first",
        "last",
        "rows in",
        "curated",
        "quarantined",
        "duplicates",
        "reconciles",
        title=f"Aisle data in {settings.data_dir}",
        caption="* an attribute snapshot: the counts of its latest run",
    )
    for r in rows:
        table.add_row(
            r.dataset,
            f"{r.table}*" if r.snapshot else r.table,
            str(r.runs),
            r.first,
            r.last,
            f"{r.rows_in:,}",
            f"{r.curated:,}",
            f"{r.quarantined:,}",
            f"{r.duplicates:,}",
            "[green]yes[/green]" if r.reconciles else "[red]NO[/red]",
        )
    console.print(table)
    for r in rows:
        _print_priceless(r.purchases_without_price, f"{r.dataset}/{r.table}: ")
    features = feature_summary(settings)
    if features:
        table = Table(
            "dataset",
            "feature table",
            "days",
            "first",
            "last",
            "rows (newest)",
            title="Feature tables (Feast offline store; the newest materialised online)",
        )
        for f in features:
            table.add_row(
                f.dataset, f.view, str(f.partitions), f.first, f.last, f"{f.rows_newest:,}"
            )
        console.print(table)
    for zone in ("raw", "curated", "quarantine", "runs", "features"):
        folder = (
            settings.data_dir / zone if zone == "features" else getattr(settings, f"{zone}_dir")
        )
        console.print(f"  {zone:<11} {folder.resolve()}")


def simulate_command(
    out: Annotated[Path, typer.Option(help="Folder for the tables and the ground truth.")],
    events: Annotated[
        int, typer.Option(help="Approximate number of interaction events.")
    ] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    csv: Annotated[bool, typer.Option(help="Also write interactions.csv (a raw export).")] = False,
) -> None:
    """Generate a simulated shop (events, sales, items, stores) with its ground truth."""
    from features.sources.simulator import SimulatorConfig, simulate, write_shop

    with console.status(f"simulating {events:,} events"):
        shop = simulate(SimulatorConfig(events=events, seed=seed))
        paths = write_shop(shop, out)
        if csv:
            from features.landing import write_csv

            write_csv(shop.interactions, out / "interactions.csv")
    for table, path in paths.items():
        console.print(f"  {table:<13} {path}")


def forget(
    user_id: Annotated[str, typer.Argument(help="The user to erase (GDPR right to erasure).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Remove every row of a user from the raw zone, curated data, quarantine, Feast's offline
    sources and online store, training sets and MLflow's local artifacts; write an audit record
    (the id's sha256, never the id). The forget_user DAG does the same."""
    from features.forget import forget_user

    settings = get_settings(data_dir=data_dir)
    if not yes and not typer.confirm(f"Erase every trace of user {user_id!r}?"):
        raise typer.Exit(1)
    try:
        done = forget_user(user_id, settings)
    except ValueError as bad:
        raise _fail(str(bad)) from None
    table = Table("store", "rows removed", title=f"user sha256:{done.user_hash[:12]}… forgotten")
    for zone, rows in sorted(done.by_zone(settings.data_dir).items()):
        table.add_row(zone, f"{rows:,}")
    for view, entities in sorted(done.online.items()):
        table.add_row(f"online store: {view}", str(entities))
    console.print(table)
    console.print(f"audit record: {settings.data_dir / 'forget' / 'audit.jsonl'}")


def _print_summaries(summaries: list[dict]) -> None:
    for s in summaries:
        reasons = ", ".join(f"{k} {v}" for k, v in s["quarantined_by_reason"].items()) or "none"
        console.print(
            f"[bold]{s['dataset']}/{s['table']}[/bold] {s['interval']}: {s['rows_in']:,} in → "
            f"{s['curated']:,} curated, {s['quarantined']:,} quarantined ({reasons}), "
            f"{s['duplicates']:,} duplicates removed"
        )
        _print_priceless(s.get("purchases_without_price", 0))


def _print_priceless(count: int, where: str = "") -> None:
    if count:  # curated and kept: price features read the price as missing, revenue is unknown
        console.print(f"  {where}{count:,} curated purchases have no price")


# Notices a library gives its callers' developers: what is deprecated, what will change.
