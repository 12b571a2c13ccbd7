"""The drift timeline of a model: the share of drifted columns per checked interval, the
intervals where drift was confirmed, the retrains it triggered and the promotions, as a PNG and
an HTML page (the PNG, and a table linking each interval's Evidently report).

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
        }
    )


def retrains(settings: Settings, model: str) -> list[pd.Timestamp]:
    path = monitoring_dir(settings, model) / "retrains.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [pd.Timestamp(line["interval_start"]) for line in lines]


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
    figure, axis = plt.subplots(figsize=(11, 3.6))
    width = _bar_width(frame.start)
    colours = ["#d62728" if d else "#9fb6cd" for d in frame.drift]
    axis.bar(frame.start, frame.share_drifted, width=width, color=colours, align="edge")
    volume = frame[frame.volume_drifted]
    if len(volume):
        axis.scatter(
            volume.start + pd.Timedelta(days=width / 2), [1.04] * len(volume),
            marker="v", color="#d62728", label="volume off", zorder=3,
        )  # fmt: skip
    axis.set_ylim(0, 1.1)
    axis.set_ylabel("share of columns drifted")
    axis.set_title(f"{model}: drift per interval (red: drift confirmed, incl. volume)")
    for n, when in enumerate(retrains(settings, model)):
        axis.axvline(when, color="#ff7f0e", linestyle="--", label="retrain" if n == 0 else None)
    for n, (when, version) in enumerate(promotions(settings, model)):
        axis.axvline(when, color="#2ca02c", label="promotion" if n == 0 else None)
        axis.annotate(f"v{version}", (when, 1.0), fontsize=8, color="#2ca02c")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(loc="upper left", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    png = out_dir / "drift_timeline.png"
    figure.savefig(png, dpi=110)
    plt.close(figure)
    page = out_dir / "drift_timeline.html"
    page.write_text(_page(model, frame, png))
    log.info("drift timeline of %s: %s, %s", model, png, page)
    return {"png": str(png), "html": str(page)}


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
        f"<td><a href='file://{html.escape(r.report)}'>report</a></td></tr>"
        for r in frame.itertuples()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{model} drift</title></head>"
        f"<body><h1>{model}: drift timeline</h1><img src='data:image/png;base64,{image}'>"
        "<table border='1' cellpadding='4'><tr><th>interval</th><th>drift</th>"
        "<th>share drifted</th><th>columns</th><th>volume ratio</th><th>Evidently</th></tr>"
        f"{rows}</table></body></html>\n"
    )
