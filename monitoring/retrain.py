"""From the interval's check to retraining: which model a data interval concerns, and whether
what the check found retrains that model now (`retrain_reason`): the champion's realised
performance below its band, or no champion yet; confirmed drift only when
`AISLE_DRIFT__RETRAIN_ON_DRIFT` says so, else it is reported. Every decision says why.

The cool-down runs on data time (interval starts), not on the wall clock, so a replay decides
as the live system would: after a retrain triggered for the interval starting at T, a drop in an
interval starting before T + `AISLE_DRIFT__COOLDOWN_HOURS` does not trigger another (a rerun of
the same interval neither). The last trigger is kept in `data/monitoring/<model>/retrain.json`,
every trigger in `retrains.jsonl` (the timeline's marks). After the checks, the model's
timeline is redrawn (monitoring.timeline), and the results name it for the task page's link.

A model with no champion yet is trained as soon as the curated history covers its training
windows (drift or not): the closed loop starts itself. Before that, no retrain is asked for,
with the reason said.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from core.clock import as_utc
from core.settings import Settings, get_settings

from .monitor import NothingToCheck, drift_check_step, monitoring_dir
from .timeline import plot

log = logging.getLogger(__name__)
MODEL_OF_FLOW = {"interactions": "recommender", "sales": "pricing"}
TABLE_OF_MODEL = {model: flow for flow, model in MODEL_OF_FLOW.items()}


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
                "performance": record.get("performance"),
            }
        )
    for model in {r["model"] for r in out if r["report"]}:  # the timeline the task page links
        drawn = plot(settings, model)["html"]
        for result in out:
            if result["model"] == model:
                result["timeline"] = drawn
    return out


def decide_retrain(model: str, record: dict, settings: Settings) -> tuple[bool, str]:
    """(retrain?, why); a positive decision is remembered for the cool-down. What retrains:
    no champion yet; the champion's realised performance below its band ("performance"); or
    confirmed drift when `AISLE_DRIFT__RETRAIN_ON_DRIFT` says so. Drift alone is reported."""
    from core.files import write_json_atomic

    start = as_utc(record["interval"]["start"])
    short = missing_history(model, as_utc(record["interval"]["end"]), settings)
    if short:
        return False, short
    reason = retrain_reason(record, settings)
    if reason.startswith("no retrain"):
        return False, reason
    state_file = monitoring_dir(settings, model) / "retrain.json"
    last = json.loads(state_file.read_text()) if state_file.exists() else None
    cooldown = timedelta(hours=settings.drift.cooldown_hours)
    if last is not None:
        last_start = as_utc(last["interval_start"])
        if last_start <= start < last_start + cooldown:
            return False, (
                f"cool-down ({reason}): a retrain was triggered for the interval of "
                f"{last_start.date()}; the next may be for an interval from "
                f"{(last_start + cooldown).isoformat()}"
            )
    trigger = {"interval_start": start.isoformat(), "interval_end": record["interval"]["end"]}
    write_json_atomic(trigger, state_file)
    with (monitoring_dir(settings, model) / "retrains.jsonl").open("a") as history:
        history.write(json.dumps({**trigger, "reason": reason}) + "\n")
    return True, reason


def retrain_reason(record: dict, settings: Settings) -> str:
    """Why the interval's record retrains its model, or why not (starting "no retrain")."""
    drift = record["drift"] and (f"drift in {', '.join(record['drifted_columns']) or 'volume'}")
    if record.get("champion_version") is None:
        return "no champion yet: the first model" + (f" ({drift})" if drift else "")
    performance = record.get("performance") or {}
    if performance.get("dropped"):
        return f"performance: {performance['reason']}"
    if drift and settings.drift.retrain_on_drift:
        return drift
    if not performance.get("judged"):
        said = performance.get("reason", "no realised performance yet")
        return f"no retrain: {drift or 'no drift confirmed'}; performance not judged ({said})"
    if drift:
        return (f"no retrain: {drift} reported, but the realised performance is inside its band "
                "(AISLE_DRIFT__RETRAIN_ON_DRIFT=true retrains on drift alone)")  # fmt: skip
    return "no retrain: no drift confirmed and the realised performance is inside its band"


def history_needed(model: str, settings: Settings) -> timedelta:
    """The curated history a training run needs before `end`: its test and valid windows and a
    fit window at least as long as the valid one."""
    if model == "recommender":
        return timedelta(days=settings.recommender_test_days + 2 * settings.recommender_valid_days)
    return timedelta(weeks=settings.pricing_test_weeks + 2 * settings.pricing_valid_weeks)


def missing_history(model: str, end: datetime, settings: Settings) -> str | None:
    """Why `model` cannot be trained on data up to `end` yet, or None when it can."""
    from features.storage import list_partitions

    from .monitor import curated_dataset

    table = TABLE_OF_MODEL[model]
    days = list_partitions(settings.curated_dir, curated_dataset(settings, table), table)
    need = history_needed(model, settings)
    if not days:
        return f"not enough history to train yet: no curated {table}"
    first = as_utc(days[0].name.removeprefix("date="))
    if end - first < need:
        return (
            f"not enough history to train yet: {(end - first).days} days of {table} curated, "
            f"{need.days} needed (test + 2 x valid windows)"
        )
    return None


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
