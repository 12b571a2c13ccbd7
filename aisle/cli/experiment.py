"""`aisle experiment start|status|stop`: online A/B experiments between a model's champion and a
challenger, judged on what the shop earns (the `experiment_monitor` DAG decides each interval;
these commands are the same functions by hand). Everything needs AISLE_ADMIN_TOKEN."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from aisle.cli.common import DataDir, console, fail
from aisle.cli.serve import Model, _admin
from core.settings import METRICS, UNITS, get_settings

experiment_app = typer.Typer(
    help="Online experiments: the champion and a challenger both live, units split by a sticky "
    "hash, a sequential test on what the shop earns.",
    no_args_is_help=True,
)


def _steps():
    from serving import deploy
    from serving.admin import AdminRefused
    from serving.promotion import PromotionError

    return deploy, (AdminRefused, PromotionError)


@experiment_app.command("start")
def start(
    model: Annotated[Model, typer.Argument(help="Which model.")],
    challenger: Annotated[
        str | None,
        typer.Option(help="Registry version of the challenger [default: the challenger alias]."),
    ] = None,
    share: Annotated[
        float | None,
        typer.Option(
            help="Share of units sent to the challenger [default: AISLE_EXPERIMENTS__SHARE]."
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="Primary metric: recommender "
            f"{'|'.join(METRICS['recommender'])}; pricing {'|'.join(METRICS['pricing'])} "
            "[default: AISLE_EXPERIMENTS__PRIMARY_METRIC]."
        ),
    ] = None,
    guardrail: Annotated[
        list[str] | None,
        typer.Option(help="A metric the challenger must not make worse (repeatable)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Deploy the challenger to the idle colour, smoke-test it, then split units between it and
    the champion (the unit: a shopper for the recommender, a shelf for pricing)."""
    settings = get_settings(data_dir=data_dir)
    _admin(settings)
    deploy, errors = _steps()
    try:
        experiment = deploy.start_experiment_step(
            model.value, challenger, settings, share=share, metric=metric,
            guardrail_metrics=guardrail,
        )  # fmt: skip
    except errors as exc:
        raise fail(str(exc)) from None
    console.print(
        f"[green]✓[/green] experiment {experiment['id']}: {model.value} version "
        f"{experiment['treatment_version']} ({experiment['treatment']}) takes "
        f"{experiment['share']:.0%} of {UNITS[model.value]} units against version "
        f"{experiment['control_version']} ({experiment['control']}), judged on "
        f"{experiment['metric']}"
    )


@experiment_app.command("status")
def status(
    model: Annotated[Model | None, typer.Argument(help="Which model [default: both].")] = None,
    data_dir: DataDir = None,
) -> None:
    """Each experiment: arms, units, the effect with its sequential interval per look, the SRM
    check and the decision so far (the same table as the HTML report)."""
    from monitoring.experiment_analysis import analyse_experiment
    from monitoring.experiment_report import status_table

    settings = get_settings(data_dir=data_dir)
    admin = _admin(settings)
    _, errors = _steps()
    try:
        experiments = admin.experiments()
    except errors as exc:
        raise fail(str(exc)) from None
    models = [model.value] if model else list(experiments)
    for name in models:
        experiment = experiments.get(name)
        if experiment is None:
            console.print(f"[dim]{name}: no experiment[/dim]")
            continue
        console.print(
            f"[bold]{experiment['id']}[/bold] ({experiment['status']}"
            f"{': ' + experiment['ended_reason'] if experiment.get('ended_reason') else ''}): "
            f"v{experiment['treatment_version']} vs v{experiment['control_version']}, "
            f"{experiment['share']:.0%} treated, metric {experiment['metric']}"
        )
        analysis = analyse_experiment(settings, experiment)
        rows = status_table(analysis)
        if rows:
            table = Table(*rows[0].keys())
            for row in rows:
                table.add_row(*(str(v) for v in row.values()))
            console.print(table)
        elif not sum(analysis.exposures.values()):
            console.print("  no outcomes attributed yet (the experiment_monitor DAG attributes "
                          "each interval)")  # fmt: skip
        else:
            answers = sum(analysis.exposures.values())
            console.print(f"  {answers} answers attributed; no unit's window has closed yet "
                          "(AISLE_EXPERIMENTS__UNIT_WINDOW_HOURS)")  # fmt: skip
        decision = analysis.decision
        console.print(f"  decision: [bold]{decision.action}[/bold] — {decision.reason}")
        if analysis.report:
            console.print(f"  report: {analysis.report}")


@experiment_app.command("stop")
def stop(
    model: Annotated[Model, typer.Argument(help="Which model.")],
    promote: Annotated[
        bool,
        typer.Option(
            "--promote", help="Promote the challenger (else: the champion keeps every unit)."
        ),
    ] = False,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "stopped by hand",
    data_dir: DataDir = None,
) -> None:
    """End the model's experiment: with --promote the challenger takes every unit and becomes
    champion; without, every unit goes back to the champion and the challenger stops."""
    settings = get_settings(data_dir=data_dir)
    _admin(settings)
    deploy, errors = _steps()
    action = "promote" if promote else "stop_by_hand"
    try:
        outcome = deploy.conclude_experiment_step(model.value, action, reason, settings)
    except errors as exc:
        raise fail(str(exc)) from None
    colour = "green" if outcome["result"] == "promoted" else "yellow"
    console.print(
        f"[{colour}]{outcome['result']}[/]: {model.value} version {outcome['version']} "
        f"(champion was {outcome['previous_version']}) — {outcome['reason']}"
    )
