"""`aisle stack up|down|status` and `aisle demo`: the whole system as local processes, and the
closed loop run by its scheduler (aisle.stack, aisle.loop)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from aisle.cli.common import DataDir, console, fail
from core.settings import get_settings

stack_app = typer.Typer(
    help="Airflow (API server, scheduler, DAG processor, triggerer; Celery workers on the "
    "production profile), the MLflow server and the serving gateway, as local processes.",
    no_args_is_help=True,
)


@stack_app.command("up")
def stack_up(data_dir: DataDir = None) -> None:
    """Start every component of the profile (AISLE_PROFILE) that is not running yet."""
    from aisle.stack import StackError, up

    settings = get_settings(data_dir=data_dir)
    try:
        settings = up(settings, on_step=lambda m: console.print(f"[dim]{m}[/dim]"))
    except (StackError, RuntimeError) as exc:
        raise fail(str(exc)) from None
    _print_urls(settings)


@stack_app.command("down")
def stack_down(data_dir: DataDir = None) -> None:
    """Stop every component and serving slot."""
    from aisle.stack import down

    stopped = down(get_settings(data_dir=data_dir))
    console.print(f"[green]✓[/green] stopped {', '.join(stopped) or 'nothing (none was running)'}")


@stack_app.command("status")
def stack_status(data_dir: DataDir = None) -> None:
    """Which components run, with their pids and logs."""
    from aisle.stack import log_file, status

    settings = get_settings(data_dir=data_dir)
    table = Table("component", "pid", "log", title=f"profile: {settings.profile}")
    for name, pid in status(settings).items():
        table.add_row(name, str(pid) if pid else "[red]down[/red]", str(log_file(settings, name)))
    console.print(table)


def _print_urls(settings) -> None:
    from aisle.stack import airflow_password_file

    console.print(f"Airflow UI  {settings.airflow_url}  (admin; {airflow_password_file(settings)})")
    console.print(f"MLflow UI   {settings.mlflow_url}")
    console.print(f"gateway     {settings.gateway_url}/recommend, {settings.gateway_url}/price")


def demo(
    live_intervals: Annotated[
        int, typer.Option(help="Intervals per flow the scheduler runs (the rest is history).")
    ] = 2,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 1800.0,
    data_dir: DataDir = None,
) -> None:
    """The main job: the closed loop, unattended. Fetch the data sets, ingest the history, start
    the stack, let Airflow's scheduler run ingest → features → drift → retrain → gate →
    blue-green promotion over the last intervals of both timelines, and print what happened.
    The stack keeps running afterwards (`aisle stack down` stops it)."""
    from aisle.airflow_api import AirflowApiError
    from aisle.cli.data import data_fetch
    from aisle.loop import LoopError, bootstrap, plan, replay_settings, run_live, summary
    from aisle.stack import StackError, up

    settings = get_settings(data_dir=data_dir)
    data_fetch(source=None, force=False, data_dir=data_dir)
    try:
        plans = plan(settings, live_intervals)
        settings = replay_settings(settings, plans)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    from aisle.replay import output_to

    log = settings.stack_dir / "logs" / "bootstrap.log"
    with output_to(log) as terminal:  # Feast's and the libraries' chatter goes to the log
        shown = Console(file=terminal)
        with shown.status("ingesting and featurising the history"):
            bootstrap(settings, plans, on_step=lambda m: shown.print(f"[dim]{m}[/dim]"))
    try:
        with console.status("starting the stack"):
            settings = up(settings, on_step=lambda m: console.print(f"[dim]{m}[/dim]"))
        with Live(_progress({}), console=console, refresh_per_second=1) as live:
            result = run_live(
                settings, plans, on_progress=lambda s: live.update(_progress(s)), timeout_s=timeout
            )
    except AirflowApiError as exc:
        raise fail(
            f"{exc}\nIf this data folder has run the loop before, its live weeks are done: start "
            "afresh with `aisle stack down` and a new AISLE_DATA_DIR (or `make clean`)."
        ) from None
    except (StackError, LoopError) as exc:
        raise fail(f"{exc} (logs: {settings.stack_dir / 'logs'})") from None
    print_summary(summary(settings, result))


def _progress(states: dict[str, Counter]) -> Table:
    from aisle.loop import DAG_ORDER

    table = Table("DAG", "queued", "running", "success", "failed", title="the loop, live")
    for dag_id in DAG_ORDER:
        counts = states.get(dag_id, Counter())
        failed = f"[red]{counts['failed']}[/red]" if counts.get("failed") else "0"
        table.add_row(
            dag_id, *(str(counts.get(s, 0)) for s in ("queued", "running", "success")), failed
        )
    return table


def _print_samples(samples: dict[str, dict], currency: str) -> None:
    """The last answer of each endpoint, as the shop's page would show it."""
    from training.pricing.quoting.house import money

    if not samples:
        console.print("[yellow]no endpoint answered 200 during the loop[/yellow]")
        return
    table = Table("endpoint", "asked", "answered", title="What a shopper saw (the last answers)")
    if "/recommend" in samples:
        request, answer = samples["/recommend"]["request"], samples["/recommend"]["answer"]
        lines = [
            f"{item.get('name') or item['item_id']}: {item['reason']}"
            for item in answer["items"][:3]
        ]
        table.add_row("/recommend", f"user {request['user_id']}", "\n".join(lines) or "(none)")
    if "/price" in samples:
        request, answer = samples["/price"]["request"], samples["/price"]["answer"]
        quoted = f"{money(answer['price'], currency)}"
        if answer.get("current_price") is not None:
            quoted += f" (shelf {money(answer['current_price'], currency)})"
        quoted += f", cost {money(answer['cost'], currency)}"
        lines = [quoted, *answer.get("notes", [])]
        asked = f"item {request['item_id']} in store {request['store_id']}"
        table.add_row("/price", asked, "\n".join(lines))
    console.print(table)


def print_summary(done: dict[str, Any]) -> None:
    console.print(f"\n[bold]The loop settled in {done['seconds']:.0f} s[/bold] "
                  f"(live intervals: {done['live']})")  # fmt: skip
    runs = Table("DAG", "runs", title="DAG runs")
    for dag_id, counts in done["runs"].items():
        runs.add_row(dag_id, ", ".join(f"{n} {state}" for state, n in counts.items()))
    console.print(runs)
    champions = Table("model", "champion", "trained up to", "gate metrics")
    for model, found in done["champions"].items():
        if found is None:
            champions.add_row(model, "[red]none[/red]", "", "")
            continue
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in found["metrics"].items())
        champions.add_row(model, f"v{found['version']}", found["data_interval_end"] or "", metrics)
    console.print(champions)
    drift = Table("model", "interval", "drift", "columns", "realised performance [band]",
                  "retrain", title="Drift and performance checks")  # fmt: skip
    for d in done["drift"]:
        drift.add_row(d["model"], d["interval"], "yes" if d["drift"] else "no",
                      ", ".join(d["columns"]), d["performance"], d["retrain"])  # fmt: skip
    console.print(drift)
    promotions = Table("at", "model", "version", "from", "result", "reason", title="Promotions")
    for p in done["promotions"]:
        previous = str(p["previous_version"] or "—")
        promotions.add_row(
            p["at"][:19], p["model"], str(p["version"]), previous, p["step"], p.get("reason") or ""
        )
    console.print(promotions)
    traffic = Table("endpoint", "answers by status", title="The shop's requests meanwhile")
    for path, statuses in done["traffic"].items():
        traffic.add_row(path, ", ".join(f"{status}: {n}" for status, n in statuses.items()))
    console.print(traffic)
    console.print("(503 before a model's first version went live; 0 = no answer)")
    _print_samples(done.get("samples", {}), done.get("currency", "$"))
    log = done["answer_log"]
    console.print(
        f"Answer log: {log['logged']} of the shop's {log['answered']} answers recorded "
        "(data/answers/date=<day>/)"
    )
    for name, url in done["urls"].items():
        console.print(f"{name:<11} {url}")
    console.print("stop everything with `aisle stack down`")
