"""An Airflow command in a process that has already imported the libraries Aisle's tasks use.

    python -m aisle.stack.preload airflow scheduler                 the LocalExecutor's parent
    python -m aisle.stack.preload airflow celery worker [options]   a Celery worker's parent

Airflow runs every task in a process forked from its executor's worker, and those workers are
forked from these two (the scheduler's LocalExecutor, a Celery worker's pool): a library imported
here is already imported in every task. Measured on 2 cores, idle: Feast takes 11.5 s to import,
Evidently 11.3 s, MLflow 4.6 s, torch 3.0 s, and a task paid them on each of the ~45 task runs
of a loop (twice that on a busy machine). The stack (`roster.py`) and the compose file start
those two commands this way.

Imports only: nothing here opens a connection, starts a thread or reads Aisle's settings (each
task still reads its own), so what a fork inherits is safe to share.
"""

from __future__ import annotations

import importlib
import sys
import warnings

TASK_LIBRARIES = ("pandas", "pyarrow", "duckdb", "torch", "mlflow", "feast", "evidently")


def preload() -> None:
    with warnings.catch_warnings():  # the libraries' own deprecation notices, once per process
        warnings.simplefilter("ignore")
        for name in TASK_LIBRARIES:
            importlib.import_module(name)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "airflow":
        print("usage: python -m aisle.stack.preload airflow <command> [options]", file=sys.stderr)
        return 2
    preload()
    from airflow.__main__ import main as airflow_main

    sys.argv = argv
    return airflow_main() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
