"""One component as a process: started in a session of its own, with its pid and log under
`data/stack/`; found running by its pid file; stopped on purpose (the pid file goes with it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from core.processes import alive, terminate
from core.settings import Settings

from .. import airflow_env
from .roster import Component


def pid_file(settings: Settings, name: str) -> Path:
    return settings.stack_dir / f"{name}.pid"


def log_file(settings: Settings, name: str) -> Path:
    return settings.stack_dir / "logs" / f"{name}.log"


def running(settings: Settings, name: str) -> int | None:
    """The component's pid when it runs."""
    path = pid_file(settings, name)
    if path.exists():
        pid = int(path.read_text())
        if alive(pid):
            return pid
    return None


def start(settings: Settings, component: Component, env: dict[str, str]) -> subprocess.Popen:
    with log_file(settings, component.name).open("ab") as log:
        process = subprocess.Popen(
            component.command,
            env={**env, **(component.env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=airflow_env.PROJECT_DIR,
            start_new_session=True,
        )
    pid_file(settings, component.name).write_text(str(process.pid))
    return process


def stop(settings: Settings, name: str) -> None:
    """Stop one component on purpose: the supervisor leaves it down until the next `up`."""
    pid = running(settings, name)
    pid_file(settings, name).unlink(missing_ok=True)
    if pid:
        terminate(pid, grace_s=20)
