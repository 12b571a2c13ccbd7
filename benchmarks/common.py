"""What every benchmark shares: the machine and commit behind a run, percentiles, the results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / ".work"  # git-ignored: generated inputs and data folders


def machine() -> dict[str, Any]:
    import pandas as pd
    import psutil
    import pyarrow as pa

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "git_commit": git("rev-parse", "HEAD"),
        "modified_files": git("diff", "--name-only", "HEAD", "--", "features", "aisle").split(),
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation, as numpy's default."""
    import numpy as np

    return float(np.percentile(values, q))


def write_results(name: str, report: dict[str, Any], markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)


def provide_sources(settings: Any, source: str) -> None:
    """A benchmark data folder's sources: the simulator generated at the folder's own size, the
    real data sets linked from the project's prepared copies (`make data`)."""
    if source == "simulator":
        from features.sources.prepare import prepare

        prepare(settings, source)
        return
    shared = settings.data_dir / "sources"
    shared.parent.mkdir(parents=True, exist_ok=True)
    if not shared.exists():
        shared.symlink_to((ROOT / "data" / "sources").resolve())


def train_and_crown(settings, model: str, end: datetime) -> dict:
    """The training DAG's stages up to `end`; a version that passes the gate becomes the
    champion at once (a promotion without serving), written to the audit log as one."""
    from core.audit import AuditLog
    from training.stages import model_stages
    from training.tracking import CHAMPION, set_alias

    stages = model_stages(model)
    started = time.perf_counter()
    path = stages.build_training_set(end, settings)
    registered = stages.register(stages.train(path, None, settings), settings)
    try:
        decision = stages.gate(registered, settings)
    except Exception as failed:  # the training task would fail: the champion stays
        decision = {"passed": False, "reasons": [f"the gate failed: {failed}"]}
    if decision["passed"]:
        set_alias(model, CHAMPION, registered["version"], {"promoted_by": "benchmark"})
        AuditLog(settings, "benchmark").write(  # the timeline marks the promotion
            model, "promote", "promoted", version=registered["version"]
        )
    return {
        "end": end.isoformat(),
        "version": registered["version"],
        "passed": decision["passed"],
        "reasons": decision["reasons"],
        "seconds": round(time.perf_counter() - started, 1),
    }
