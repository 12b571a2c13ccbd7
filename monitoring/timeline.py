"""The monitoring timeline of a model, as a PNG and an HTML page (the PNG, and a table linking
each interval's Evidently report):

* top: per checked interval, each column's drift score over its (calibrated) threshold, so 1 is
  the threshold, and the intervals where drift was confirmed;
* bottom: the champion's realised metric per interval against the band its test window gives,
  with the drops marked;
* both: each retrain with its reason (performance, drift, first model), and the promotions.

Everything sits on the data's time axis: intervals by their start, a retrain at the interval
that triggered it, a promotion at the promoted version's data end (its `data_interval_end` tag),
so a replay of last year reads like last year. Sources: `data/monitoring/<model>/timeline.jsonl`
(monitor.py), `retrains.jsonl` (retrain.py) and the serving audit log.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from core.settings import Settings

from .monitor import monitoring_dir

log = logging.getLogger(__name__)


def load(settings: Settings, model: str) -> pd.DataFrame:
    path = monitoring_dir(settings, model) / "timeline.jsonl"
    if not path.exists():
        raise FileNotFoundError(
            f"no drift checks of {model} yet ({path}); run the drift_monitor DAG or "
            f"`aisle drift check {model} --start ... --end ...`"
        )
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return pd.DataFrame(
        {
            "start": pd.to_datetime([r["interval"]["start"] for r in rows], utc=True),
            "share_drifted": [r["share_drifted"] for r in rows],
            "drift": [r["drift"] for r in rows],
            "drifted_columns": [", ".join(r["drifted_columns"]) for r in rows],
            "volume_ratio": [r.get("volume_ratio") for r in rows],
            "volume_drifted": [bool(r.get("volume_drifted")) for r in rows],
            "report": [r.get("report", {}).get("html", "") for r in rows],
            "score_ratios": [_score_ratios(r) for r in rows],
            "calibrated": [bool((r.get("calibration") or {}).get("calibrated")) for r in rows],
            "performance": [r.get("performance") or {} for r in rows],
        }
    )


def _score_ratios(record: dict) -> dict[str, float]:
    """Each column's score over its threshold, on the drift scale (above 1: drifted); p-value
    methods as -log10(p) over -log10(threshold)."""
    from .calibration import drift_scale

    out = {}
    for column in record.get("columns", []):
        method, threshold = column["method"], column["threshold"]
        scale = drift_scale(method, threshold)
        if scale > 0:
            out[column["column"]] = drift_scale(method, column["score"]) / scale
    if record.get("volume_ratio") is not None and record.get("volume_tolerance"):
        out["volume"] = abs(record["volume_ratio"] - 1) / record["volume_tolerance"]
    return out


def retrains(settings: Settings, model: str) -> list[tuple[pd.Timestamp, str]]:
    """(interval start, reason) of each retrain the monitor asked for."""
    path = monitoring_dir(settings, model) / "retrains.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [(pd.Timestamp(line["interval_start"]), line.get("reason", "")) for line in lines]


def reason_kind(reason: str) -> str:
    """performance, drift or first model: what a retrain's reason comes down to."""
    if reason.startswith("performance"):
        return "performance"
    return "first model" if reason.startswith("no champion") else "drift"


def promotions(settings: Settings, model: str) -> list[tuple[pd.Timestamp, str]]:
    """(data end of the promoted version, version) for each promotion in the audit log."""
    from core.audit import AuditLog

    promoted = [
        e["version"]
        for e in AuditLog(settings).entries(model)
        if e["action"] == "promote" and e["step"] == "promoted"
    ]
    if not promoted:
        return []
    from mlflow import MlflowClient

    from training.tracking import point_at_store

    point_at_store(settings)
    client, out = MlflowClient(), []
    for version in promoted:
        end = client.get_model_version(model, str(version)).tags.get("data_interval_end")
        if end:
            out.append((pd.Timestamp(end), str(version)))
    return out


def plot(settings: Settings, model: str, out_dir: Path | None = None) -> dict[str, str]:
    """`drift_timeline.png` and `drift_timeline.html` in `out_dir` (default: the model's
    monitoring folder); their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = load(settings, model)
    out_dir = out_dir or monitoring_dir(settings, model)
    out_dir.mkdir(parents=True, exist_ok=True)
    figure, (axis, below) = plt.subplots(
        2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    _drift_panel(axis, frame, model)
    _performance_panel(below, frame)
    kinds = {"performance": "#d62728", "drift": "#ff7f0e", "first model": "#7f7f7f"}
    labelled: set[str] = set()
    for when, reason in retrains(settings, model):
        kind = reason_kind(reason)
        label = None if kind in labelled else f"retrain: {kind}"
        labelled.add(kind)
        for panel in (axis, below):
            panel.axvline(when, color=kinds[kind], linestyle="--", label=label)
            label = None
    for n, (when, version) in enumerate(promotions(settings, model)):
        axis.axvline(when, color="#2ca02c", label="promotion" if n == 0 else None)
        axis.annotate(f"v{version}", (when, axis.get_ylim()[1] * 0.95), fontsize=8,
                      color="#2ca02c")  # fmt: skip
    for panel in (axis, below):
        if panel.get_legend_handles_labels()[0]:
            panel.legend(loc="upper left", fontsize=7, ncol=3)
    figure.autofmt_xdate()
    figure.tight_layout()
    png = out_dir / "drift_timeline.png"
    figure.savefig(png, dpi=110)
    plt.close(figure)
    page = out_dir / "drift_timeline.html"
    page.write_text(_page(model, frame, png))
    log.info("drift timeline of %s: %s, %s", model, png, page)
    return {"png": str(png), "html": str(page)}


def _drift_panel(axis, frame: pd.DataFrame, model: str) -> None:
    """Each column's score over its threshold per interval; confirmed drift shaded."""
    ratios = pd.DataFrame(list(frame.score_ratios), index=frame.start)
    for column in ratios.columns:
        axis.plot(ratios.index, ratios[column], marker=".", linewidth=1, label=column)
    width = pd.Timedelta(days=_bar_width(frame.start) / 0.9)
    for start in frame.start[frame.drift]:
        axis.axvspan(start, start + width, color="#d62728", alpha=0.12, linewidth=0)
    axis.axhline(1.0, color="black", linewidth=0.8)
    top = float(np.nanmax(ratios.to_numpy())) if ratios.size else 1.0
    axis.set_ylim(0, max(2.0, min(top * 1.1, 6.0)))
    axis.set_ylabel("score ÷ threshold")
    share = (frame.calibrated.mean() if len(frame) else 0.0) * 100
    axis.set_title(f"{model}: drift per interval (1 = the column's threshold, calibrated in "
                   f"{share:.0f}% of intervals; red: drift confirmed)")  # fmt: skip


def _performance_panel(axis, frame: pd.DataFrame) -> None:
    """The champion's realised metric per interval against its band; drops marked."""
    rows = [(start, p) for start, p in zip(frame.start, frame.performance, strict=True)
            if p and p.get("value") is not None]  # fmt: skip
    if not rows:
        axis.text(0.5, 0.5, "no realised performance yet (no champion, or no outcomes)",
                  ha="center", va="center", transform=axis.transAxes, fontsize=9)  # fmt: skip
        axis.set_yticks([])
        return
    starts = [start for start, _ in rows]
    value = [p["value"] for _, p in rows]
    band = [p.get("band") or {} for _, p in rows]
    low = [b.get("low", np.nan) for b in band]
    high = [b.get("high", np.nan) for b in band]
    axis.fill_between(starts, low, high, step="mid", color="#1f77b4", alpha=0.15,
                      label="expected band (champion's test window)")  # fmt: skip
    axis.plot(starts, value, marker="o", markersize=3, color="#1f77b4", label="realised")
    dropped = [(s, p["value"]) for s, p in rows if p.get("dropped")]
    if dropped:
        axis.scatter(*zip(*dropped, strict=True), color="#d62728", zorder=3, label="drop")
    metric = rows[-1][1].get("metric", "metric")
    axis.set_ylabel(f"realised {metric}")


def _bar_width(starts: pd.Series) -> float:
    """Bars one interval wide (in matplotlib's day units)."""
    if len(starts) < 2:
        return 1.0
    return float(starts.sort_values().diff().dropna().min() / pd.Timedelta(days=1)) * 0.9


def _page(model: str, frame: pd.DataFrame, png: Path) -> str:
    image = base64.b64encode(png.read_bytes()).decode()
    rows = "\n".join(
        f"<tr><td>{r.start.date()}</td><td>{'yes' if r.drift else ''}</td>"
        f"<td>{r.share_drifted:.2f}</td><td>{html.escape(r.drifted_columns)}</td>"
        f"<td>{'' if pd.isna(r.volume_ratio) else f'{r.volume_ratio:.2f}'}</td>"
        f"<td>{_performance_cell(r.performance)}</td>"
        f"<td><a href='file://{html.escape(r.report)}'>report</a></td></tr>"
        for r in frame.itertuples()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{model} drift</title></head>"
        f"<body><h1>{model}: drift timeline</h1><img src='data:image/png;base64,{image}'>"
        "<table border='1' cellpadding='4'><tr><th>interval</th><th>drift</th>"
        "<th>share drifted</th><th>columns</th><th>volume ratio</th><th>realised performance</th>"
        "<th>Evidently</th></tr>"
        f"{rows}</table></body></html>\n"
    )


def _performance_cell(performance: dict) -> str:
    from .performance import performance_text

    text = performance_text(performance)
    return html.escape(text + (" DROP" if text and performance.get("dropped") else ""))
