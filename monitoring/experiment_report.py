"""An online experiment's report, for a person: one self-contained HTML page per experiment,
rewritten at every look, at <data_dir>/monitoring/experiments/<experiment id>.html (beside the
drift reports, in the folder the console serves reports from), and logged to the MLflow
experiment "experiments", one run per experiment id.

The page: what is compared (model, versions, metric, unit of randomisation, start, status); the
decision and why, in a box at the top; a figure of the effect with its sequential interval over
the looks and of the units per arm; the sample-ratio check; the table per look that
`aisle experiment status` prints (`status_table`, one source for both); the guardrail metrics.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path
from typing import Any

import pandas as pd

from core.files import write_with
from core.settings import Settings

from .experiment_analysis import ExperimentAnalysis

ACTIONS = {  # the box's colour and headline per decision
    "promote": ("#e6f4ea", "#1e7e34", "Promote the treatment"),
    "continue": ("#eef2f7", "#34495e", "Keep the experiment running"),
    "stop_harm": ("#fdecea", "#b02a37", "Stop: the treatment does harm"),
    "stop_futility": ("#fff4e5", "#8a5a00", "Stop: no difference worth waiting for"),
    "stop_srm": ("#fdecea", "#b02a37", "Stop: the arms are not comparable (sample-ratio mismatch)"),
    "stop_guardrail": ("#fdecea", "#b02a37", "Stop: a guardrail metric got worse"),
}


def report_path(settings: Settings, experiment_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment_id).strip(".") or "experiment"
    return settings.data_dir / "monitoring" / "experiments" / f"{safe}.html"


def status_table(analysis: ExperimentAnalysis) -> list[dict[str, str]]:
    """The primary metric per look, as text: what the CLI prints and the report shows."""
    return [_row(row) for row in analysis.analysis.to_dict("records")]


def _row(row: dict[str, Any]) -> dict[str, str]:
    return {
        "look": str(int(row["look"])),
        "at": pd.Timestamp(row["at"]).strftime("%Y-%m-%d %H:%M"),
        "units control": str(int(row["n_control"])),
        "units treatment": str(int(row["n_treatment"])),
        "mean control": _num(row["mean_control"]),
        "mean treatment": _num(row["mean_treatment"]),
        "effect": f"{_num(row['effect'], signed=True)} ({_pct(row['relative_effect'])})",
        "interval": f"[{_num(row['lower'])}, {_num(row['upper'])}]",
        "significant": "yes" if row["significant"] else "no",
    }


def write_report(analysis: ExperimentAnalysis, path: Path) -> Path:
    """The report's HTML page at `path`, written atomically; returns `path`."""
    page = _page(analysis)
    return write_with(Path(path), lambda tmp: tmp.write_text(page, encoding="utf-8"))


def log_report(settings: Settings, analysis: ExperimentAnalysis) -> str:
    """Log the looks and the report to the experiment's MLflow run (made on its first look):
    per look (step = look index, timestamp = the look's time, so a repeated look adds nothing)
    effect, lower, upper, n_control, n_treatment and each guardrail's effect, lower, upper;
    the decision as tags; the HTML as artifact. Returns the run id."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from training.tracking import use_tracking

    experiment_id = str(analysis.experiment["id"])
    tracking = use_tracking(settings, "experiments")
    client = MlflowClient()
    found = client.search_runs(
        [tracking], filter_string=f"tags.`aisle.experiment` = '{experiment_id}'", max_results=1
    )
    existing = found[0].info.run_id if found else None
    with mlflow.start_run(run_id=existing, run_name=None if existing else experiment_id) as run:
        mlflow.set_tags(
            {
                "aisle.experiment": experiment_id,
                "aisle.model": analysis.model,
                "aisle.metric": analysis.metric,
                "aisle.status": str(analysis.experiment.get("status", "")),
                "aisle.decision": analysis.decision.action,
                "aisle.decision_reason": analysis.decision.reason[:4000],
                "aisle.control_version": str(analysis.experiment.get("control_version")),
                "aisle.treatment_version": str(analysis.experiment.get("treatment_version")),
            }
        )
        metrics = _look_metrics(analysis.analysis, "", ("n_control", "n_treatment", "srm_p"))
        for name, frame in analysis.guardrails.items():
            metrics += _look_metrics(frame, f"guardrail.{name}.", ())
        batch = [Metric(key, value, stamp, step) for key, value, stamp, step in metrics]
        for i in range(0, len(batch), 1000):  # MLflow takes at most 1000 metrics a call
            client.log_batch(run.info.run_id, metrics=batch[i : i + 1000])
        if analysis.report is not None:
            mlflow.log_artifact(str(analysis.report), "report")
    return run.info.run_id


def _look_metrics(frame: pd.DataFrame, prefix: str, extra: tuple[str, ...]) -> list[tuple]:
    out = []
    for row in frame.to_dict("records"):
        stamp = int(pd.Timestamp(row["at"]).timestamp() * 1000)
        for name in ("effect", "lower", "upper", *extra):
            value = row[name]
            if value is not None and pd.notna(value):
                out.append((f"{prefix}{name}", float(value), stamp, int(row["look"])))
    return out


# ---- the page ------------------------------------------------------------------------------


def _page(a: ExperimentAnalysis) -> str:
    e = a.experiment
    title = (
        f"Experiment {e['id']}: {a.model} v{e.get('treatment_version') or '?'} against "
        f"v{e.get('control_version') or '?'}"
    )
    started = pd.Timestamp(float(e["started_at"]), unit="s", tz="UTC")
    status = str(e.get("status", "running"))
    if e.get("ended_at"):
        ended = pd.Timestamp(float(e["ended_at"]), unit="s", tz="UTC")
        status += f" (ended {ended:%Y-%m-%d %H:%M} UTC: {e.get('ended_reason') or 'no reason'})"
    facts = [
        ("model", a.model),
        ("control", f"v{e.get('control_version') or '?'} on the {e.get('control')} colour"),
        ("treatment", f"v{e.get('treatment_version') or '?'} on the {e.get('treatment')} colour, "
                      f"{a.design.treatment_share:.0%} of the units"),
        ("primary metric", f"{a.metric} per unit, higher is better"),
        ("guardrail metrics", ", ".join(a.guardrails) or "none"),
        ("unit of randomisation", a.unit),
        ("started", f"{started:%Y-%m-%d %H:%M} UTC"),
        ("status", status),
        ("design", f"{a.design.confidence:.0%} sequential intervals, "
                   f"{a.design.expected_units} planned units"),
        ("units so far", f"{a.units['control']} control, {a.units['treatment']} treatment "
                         f"({a.exposures['control']} + {a.exposures['treatment']} answers)"),
    ]  # fmt: skip
    background, colour, headline = ACTIONS.get(a.decision.action, ACTIONS["continue"])
    notes = "".join(f"<p class='note'>{_e(n)}</p>" for n in a.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
.decision {{ background: {background}; border-left: 6px solid {colour}; padding: 0.8em 1.2em; }}
.decision h2 {{ color: {colour}; margin: 0 0 0.3em 0; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #f4f4f4; }} td:first-child, th:first-child {{ text-align: left; }}
.flag {{ color: #b02a37; font-weight: bold; }} .note {{ color: #8a5a00; }}
</style></head><body>
<h1>{_e(title)}</h1>
<div class="decision"><h2>{_e(headline)} <small>({_e(a.decision.action)})</small></h2>
<p>{_e(a.decision.reason)}</p></div>
{notes}
<h2>What is compared</h2>
{_table([{"": k, " ": v} for k, v in facts], header=False)}
<h2>Effect over the looks</h2>
{_figure(a)}
<h2>Sample-ratio check</h2>
{_srm(a)}
<h2>Looks ({_e(a.metric)})</h2>
{_table(status_table(a)) if len(a.analysis) else "<p>No look has two units in each arm yet.</p>"}
<h2>Guardrail metrics</h2>
{_guardrails(a)}
<p class="note">Effects are treatment minus control of the per-unit metric, CUPED-adjusted on
each unit's pre-experiment value; intervals are group-sequential (valid at every look, however
often the report is read).</p>
</body></html>
"""


def _figure(a: ExperimentAnalysis) -> str:
    if a.analysis.empty:
        return "<p>No look has two units in each arm yet: nothing to plot.</p>"
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    frame = a.analysis
    at = pd.to_datetime(frame["at"]).dt.tz_convert("UTC").dt.tz_localize(None)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=(3, 2))
    top.fill_between(at, frame["lower"], frame["upper"], alpha=0.25, label="sequential interval")
    top.plot(at, frame["effect"], marker="o", label="effect (treatment - control)")
    top.axhline(0.0, color="black", linewidth=0.8)
    top.set_ylabel(f"{a.metric} per unit")
    top.legend(loc="best")
    bottom.plot(at, frame["n_control"], marker="o", label="control")
    bottom.plot(at, frame["n_treatment"], marker="o", label="treatment")
    bottom.set_ylabel("units")
    bottom.set_ylim(bottom=0)
    bottom.set_xlabel("look (UTC)")
    bottom.legend(loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<img alt="effect of {_e(a.metric)} with its sequential interval, and units per arm, '
        f'over the looks" src="data:image/png;base64,{data}">'
    )


def _srm(a: ExperimentAnalysis) -> str:
    if a.analysis.empty:
        return "<p>No look yet.</p>"
    last = a.analysis.iloc[-1]
    n_c, n_t = int(last["n_control"]), int(last["n_treatment"])
    flagged = last["srm_p"] < a.design.srm_alpha
    verdict = (
        "<span class='flag'>MISMATCH: the split is not the one planned; the arms are not "
        "comparable</span>"
        if flagged
        else "no mismatch"
    )
    return (
        f"<p>At look {int(last['look'])}: {n_c} control and {n_t} treatment units, an observed "
        f"treatment share of {n_t / (n_c + n_t):.1%} against the planned "
        f"{a.design.treatment_share:.1%}; chi-square p = {last['srm_p']:.3g} "
        f"(flagged below {a.design.srm_alpha:g}): {verdict}.</p>"
    )


def _guardrails(a: ExperimentAnalysis) -> str:
    if not a.guardrails:
        return "<p>None.</p>"
    rows = []
    for name, frame in a.guardrails.items():
        if frame.empty:
            rows.append({"metric": name, "look": "-", "effect": "-", "interval": "-",
                         "verdict": "no look yet"})  # fmt: skip
            continue
        last = _row(frame.iloc[-1].to_dict())
        worse = bool(frame.iloc[-1]["significant"]) and frame.iloc[-1]["effect"] < 0
        verdict = "significantly worse" if worse else "not worse"
        if bool(frame.iloc[-1]["significant"]) and not worse:
            verdict = "significantly better"
        rows.append({"metric": name, "look": last["look"], "effect": last["effect"],
                     "interval": last["interval"], "verdict": verdict})  # fmt: skip
    return _table(rows)


def _table(rows: list[dict[str, str]], header: bool = True) -> str:
    if not rows:
        return ""
    head = "<tr>" + "".join(f"<th>{_e(c)}</th>" for c in rows[0]) + "</tr>" if header else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row.values()) + "</tr>" for row in rows
    )
    return f"<table>{head}{body}</table>"


def _num(value: Any, signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "-"
    return f"{float(value):+.4g}" if signed else f"{float(value):.4g}"


def _pct(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):+.1%}"


def _e(text: Any) -> str:
    return html.escape(str(text))
