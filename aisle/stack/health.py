"""Waiting for the stack to be healthy: each started component on its health URL, then Airflow's
scheduler and DAG processor as its API server reports them."""

from __future__ import annotations

import subprocess
import time

import httpx

from core.settings import Settings

from .processes import log_file
from .roster import Component, airflow_health_url


class StackError(RuntimeError):
    """A process of the stack did not start or did not become healthy; the message names its log."""


def wait_healthy(
    settings: Settings, component: Component, process: subprocess.Popen, deadline: float
) -> None:
    while component.health_url:
        if process.poll() is not None:
            raise StackError(f"{component.name} exited; see {log_file(settings, component.name)}")
        try:
            if httpx.get(component.health_url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise StackError(
                f"{component.name} did not answer on {component.health_url}; "
                f"see {log_file(settings, component.name)}"
            )
        time.sleep(1)


def wait_scheduler(settings: Settings, deadline: float) -> None:
    """Until Airflow's health endpoint reports the scheduler and DAG processor healthy."""
    url = airflow_health_url(settings)
    report = None
    while time.monotonic() < deadline:
        try:
            report = httpx.get(url, timeout=2).json()
            if all(
                report.get(part, {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor")
            ):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    raise StackError(f"Airflow is not healthy: {report}; see {settings.stack_dir / 'logs'}")
