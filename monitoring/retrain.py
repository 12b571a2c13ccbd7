"""From drift to retraining: which model a data interval concerns, and whether its confirmed
drift retrains that model now or falls inside the cool-down.

The cool-down runs on data time (interval starts), not on the wall clock, so a replay decides
as the live system would: after a retrain triggered for the interval starting at T, drift in an
interval starting before T + `AISLE_DRIFT__COOLDOWN_HOURS` does not trigger another (a rerun of
the same interval neither). The last trigger is kept in `data/monitoring/<model>/retrain.json`,
every trigger in `retrains.jsonl` (the drift timeline's marks).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from aisle.settings import Settings, get_settings
from training.tracking import as_utc

from .monitor import NothingToCheck, drift_check_step, monitoring_dir

log = logging.getLogger(__name__)
MODEL_OF_FLOW = {"interactions": "recommender", "sales": "pricing"}


def check_intervals_step(
    intervals: list[dict[str, str]], settings: Settings | None = None
) -> list[dict[str, Any]]:
    """Check each (flow, start, end) for its model's drift and decide on retraining. An interval
    with no curated rows, or no reference yet (the first weeks of a timeline), is reported as
    such and retrains nothing."""
    settings = settings or get_settings()
    out = []
    for interval in intervals:
        model = MODEL_OF_FLOW[interval["flow"]]
        try:
            record = drift_check_step(model, interval["start"], interval["end"], settings)
        except NothingToCheck as empty:
            log.info("%s %s: %s", model, interval["start"], empty)
            out.append({"model": model, **interval, "drift": False, "drifted_columns": [],
                        "report": None, "mlflow_run_id": None, "retrain": False,
                        "reason": f"nothing to check: {empty}"})  # fmt: skip
            continue
        retrain, reason = decide_retrain(model, record, settings)
        out.append(
            {
                "model": model,
                "start": interval["start"],
                "end": interval["end"],
                "drift": record["drift"],
                "drifted_columns": record["drifted_columns"],
                "report": record["report"]["html"],
                "mlflow_run_id": record["mlflow_run_id"],
                "retrain": retrain,
                "reason": reason,
            }
        )
    return out


def decide_retrain(model: str, record: dict, settings: Settings) -> tuple[bool, str]:
    """(retrain?, why); a positive decision is remembered for the cool-down."""
    from features.storage import write_json_atomic

    if not record["drift"]:
        return False, "no drift confirmed"
    start = as_utc(record["interval"]["start"])
    state_file = monitoring_dir(settings, model) / "retrain.json"
    last = json.loads(state_file.read_text()) if state_file.exists() else None
    cooldown = timedelta(hours=settings.drift.cooldown_hours)
    if last is not None:
        last_start = as_utc(last["interval_start"])
        if last_start <= start < last_start + cooldown:
            return False, (
                f"cool-down: a retrain was triggered for the interval of {last_start.date()}; "
                f"the next may be for an interval from {(last_start + cooldown).isoformat()}"
            )
    trigger = {"interval_start": start.isoformat(), "interval_end": record["interval"]["end"]}
    write_json_atomic(trigger, state_file)
    columns = ", ".join(record["drifted_columns"]) or "volume"
    with (monitoring_dir(settings, model) / "retrains.jsonl").open("a") as history:
        history.write(json.dumps({**trigger, "reason": f"drift in {columns}"}) + "\n")
    return True, f"drift in {columns}"


def retrain_event(results: list[dict[str, Any]], model: str) -> dict[str, Any] | None:
    """The Asset event extra for `model`'s retraining, or None when none of `results` asks."""
    asks = [r for r in results if r["model"] == model and r["retrain"]]
    if not asks:
        return None
    latest = max(asks, key=lambda r: r["start"])
    return {
        "model": model,
        "end": latest["end"],
        "reason": latest["reason"],
        "report": latest["report"],
    }
