"""The feature-table build as a Spark application: what Airflow's SparkSubmitOperator runs when
`AISLE_SPARK__SUBMIT=true` (the production profile on a cluster).

    spark-submit --master spark://spark-master:7077 features/engines/submit.py \\
        build --intervals '[{"flow": "sales", "start": "1990-06-14", "end": "1990-06-21"}]'
    python -m features.engines.submit build --flow sales --start 1990-06-14 --end 1990-06-21

The application is a separate process (spark-submit's driver), so it takes its settings from the
environment it inherits (AISLE_*: the data folder, the sources, the engine and the Spark master)
and its intervals from the command line: the `features` DAG passes the `intervals` task's output.
`build_intervals` is also what the DAG's in-process `build` task calls, so both paths write the
same partitions.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


def build_intervals(
    todo: Iterable[Mapping[str, str]], settings: Settings | None = None
) -> list[dict[str, Any]]:
    """The feature tables of every (flow, start, end) in `todo`, in order; their summaries."""
    from features.pipeline import build_step

    settings = settings or get_settings()
    return [build_step(i["flow"], i["start"], i["end"], settings) for i in todo]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="features.engines.submit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the feature tables of intervals")
    which = build.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--intervals", help='a JSON list of {"flow", "start", "end"} (the DAG\'s intervals task)'
    )
    which.add_argument("--flow", choices=["interactions", "sales"], help="one interval's flow")
    build.add_argument("--start", help="with --flow: YYYY-MM-DD, UTC")
    build.add_argument("--end", help="with --flow: YYYY-MM-DD, UTC, exclusive")
    args = parser.parse_args(argv)
    if args.flow and not (args.start and args.end):
        parser.error("--flow needs --start and --end")
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if args.intervals:
        todo = json.loads(args.intervals)
    else:
        todo = [{"flow": args.flow, "start": args.start, "end": args.end}]
    settings = get_settings()
    log.info("building %d interval(s) on %s", len(todo), settings.engine)
    done = build_intervals(todo, settings)
    print(json.dumps(done))  # the driver's log: what each interval wrote
    return done


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    main()
