"""One interval of the closed loop, ingest to promotion, under Airflow's scheduler: its wall
time on the embedded default and on the production profile, side by side, and the share of the
work each stage takes.

    .venv/bin/python benchmarks/loop.py [--profile local|production|both]

Each profile gets a fresh data folder (the real data sets linked from `make data`) and, in
production, fresh databases on the host's PostgreSQL and an emptied Redis. The history of both
timelines is bootstrapped (not timed); then `aisle stack up` and one backfilled interval per
flow (the last week of MovieLens and of Dominick's), which the scheduler carries through
ingest → features → drift → retrain → gate → promotion with no champion yet (a first model
each). Stage times are the task instances' own durations, read back through Airflow's API;
"wall" is the first ingest task's start to the last promotion's end. Results:
benchmarks/results/loop.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import time
from datetime import datetime
from urllib.parse import quote

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchmarks.common import RESULTS, WORK, machine, provide_sources, write_results  # noqa: E402

STAGES = {
    "ingest_interactions": "ingest",
    "ingest_sales": "ingest",
    "features": "features",
    "drift_monitor": "drift",
    "promote_model": "promotion",
}
TRAINING_STAGE = {"gate": "gate"}  # every other training task is "train"


def services_up() -> bool:
    def open_(port: int) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    return open_(5432) and open_(6379)


def run_profile(profile: str) -> dict:
    from aisle import loop, stack
    from aisle.airflow_api import AirflowApi
    from core.settings import get_settings

    folder = WORK / "loop" / profile / "data"
    shutil.rmtree(folder.parent, ignore_errors=True)
    os.environ["AIRFLOW_HOME"] = str(folder / "airflow")
    settings = get_settings(data_dir=folder, profile=profile, interactions_schedule="@weekly")
    provide_sources(settings, "movielens")
    if profile == "production":
        stack.reset_production_state(settings)
    plans = loop.plan(settings, live_intervals=1)
    settings = loop.replay_settings(settings, plans)
    loop.bootstrap(settings, plans, on_step=print)
    try:
        settings = stack.up(settings, on_step=print)
        result = loop.run_live(settings, plans, timeout_s=1800)
        api = AirflowApi(settings)
        tasks = []
        for run in result.runs:
            run_id = quote(run["dag_run_id"], safe="")
            for ti in api.task_instances(run["dag_id"], run_id):
                if ti["start_date"] and ti["end_date"] and ti["state"] == "success":
                    tasks.append((run["dag_id"], ti["task_id"], ti["start_date"], ti["end_date"]))
        done = loop.summary(settings, result)
    finally:
        stack.down(settings)
    return {"profile": profile, **stage_table(tasks), "champions": done["champions"]}


def stage_table(tasks: list[tuple[str, str, str, str]]) -> dict:
    def stage(dag_id: str, task_id: str) -> str:
        if dag_id.endswith("_training"):
            return TRAINING_STAGE.get(task_id, "train")
        return STAGES.get(dag_id, dag_id)

    seconds: dict[str, float] = {}
    spans: dict[str, list[datetime]] = {}
    for dag_id, task_id, start, end in tasks:
        began, ended = datetime.fromisoformat(start), datetime.fromisoformat(end)
        name = stage(dag_id, task_id)
        seconds[name] = seconds.get(name, 0.0) + (ended - began).total_seconds()
        span = spans.setdefault(name, [began, ended])
        span[0], span[1] = min(span[0], began), max(span[1], ended)
    first = min(s[0] for s in spans.values())
    last = max(s[1] for s in spans.values())
    total = sum(seconds.values())
    order = ["ingest", "features", "drift", "train", "gate", "promotion"]
    return {
        "wall_s": round((last - first).total_seconds(), 1),
        "task_seconds": round(total, 1),
        "stages": {
            name: {
                "task_seconds": round(seconds[name], 1),
                "share": round(seconds[name] / total, 3),
                "from_s": round((spans[name][0] - first).total_seconds(), 1),
                "to_s": round((spans[name][1] - first).total_seconds(), 1),
            }
            for name in order
            if name in seconds
        },
    }


def markdown(runs: list[dict]) -> str:
    lines = ["# The closed loop: one interval, ingest to promotion", ""]
    lines += [
        "| profile | wall s | task s | ratio to local (wall) | measured |",
        "|---|---|---|---|---|",
    ]
    local = next((r["wall_s"] for r in runs if r["profile"] == "local"), None)
    for r in runs:
        ratio = f"{r['wall_s'] / local:.2f}" if local else "—"
        when = r.get("measured_at", "")
        lines.append(f"| {r['profile']} | {r['wall_s']} | {r['task_seconds']} | {ratio} | {when} |")
    for r in runs:
        lines += ["", f"## {r['profile']}: stages", ""]
        lines += ["| stage | task s | share of task time | from s | to s |"]
        lines += ["|---|---|---|---|---|"]
        for name, s in r["stages"].items():
            lines.append(
                f"| {name} | {s['task_seconds']} | {s['share']:.1%} | {s['from_s']} | {s['to_s']} |"
            )
    lines += ["", "Task time sums the task instances' own durations (the two models' chains run",
              "side by side, so it can exceed the wall time); from/to: the stage's first start",
              "and last end after the first ingest task started.", ""]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["local", "production", "both"], default="both")
    profiles = parser.parse_args().profile
    wanted = ["local", "production"] if profiles == "both" else [profiles]
    if "production" in wanted and not services_up():
        print("PostgreSQL (5432) or Redis (6379) is not running: production profile skipped")
        wanted.remove("production")
    started = time.time()
    runs = [{**run_profile(p), "measured_at": time.strftime("%Y-%m-%d %H:%M")} for p in wanted]
    # a profile not run now keeps its last figures (each run is stamped with its time)
    previous = RESULTS / "loop.json"
    if previous.exists():
        kept = [r for r in json.loads(previous.read_text())["runs"] if r["profile"] not in wanted]
        runs = sorted(runs + kept, key=lambda r: r["profile"] != "local")
    report = {"machine": machine(), "seconds": round(time.time() - started), "runs": runs}
    write_results("loop", report, markdown(runs))


if __name__ == "__main__":
    main()
