"""The environment Airflow runs in for Aisle: its home, its config file, the project's DAGs.

Set before Airflow is imported (its configuration is read at import time). Values already in the
environment win, so a deployment can point Airflow elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .settings import Settings

PROJECT_DIR = Path(__file__).resolve().parents[1]


def airflow_home(settings: Settings) -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or settings.data_dir.resolve() / "airflow")


def configure(settings: Settings) -> dict[str, str]:
    """Export Airflow's home and config, the project's folder and the settings; return them.

    DAG files and tasks read their settings from the environment, so exporting them here makes
    a DAG parsed or run in this process (or its children) see exactly `settings`.
    """
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    values = {
        **settings.to_env(),
        "AISLE_DATA_DIR": str(settings.data_dir.resolve()),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": os.environ.get("AIRFLOW_CONFIG") or str(PROJECT_DIR / "airflow.cfg"),
        "AISLE_PROJECT_DIR": os.environ.get("AISLE_PROJECT_DIR") or str(PROJECT_DIR),
    }
    os.environ.update(values)
    # Airflow spawns `airflow` subprocesses; they must come from this environment.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    return values


def migrate_db(settings: Settings) -> None:
    """Create or upgrade Airflow's metadata database (idempotent)."""
    configure(settings)
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`airflow db migrate` failed:\n{result.stderr[-2000:]}")
