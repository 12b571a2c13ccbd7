"""The whole stack at once: `up` (start what is not running, wait until healthy, then the
serving cluster), `down` (stop everything, slots included) and `status`."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from core.settings import Settings

from .. import airflow_env
from .credentials import ensure_ui_password
from .databases import ensure_databases
from .environment import stack_env
from .health import wait_healthy, wait_scheduler
from .processes import running, start, stop
from .roster import SUPERVISOR, Component, components, event_stream


def up(
    settings: Settings, on_step: Callable[[str], None] = print, timeout_s: float = 240.0
) -> Settings:
    """Start every component the profile needs (keeping those that run); wait until healthy.
    Returns the settings the stack runs with (the admin token included)."""
    from serving.cluster import up as serving_up

    settings, env = stack_env(settings)
    ensure_databases(settings)
    airflow_env.migrate_db(settings)
    ensure_ui_password(settings)
    (settings.stack_dir / "logs").mkdir(parents=True, exist_ok=True)
    started = []
    for component in components(settings):
        if running(settings, component.name):
            continue
        on_step(f"starting {component.name}")
        started.append((component, start(settings, component, env)))
    deadline = time.monotonic() + timeout_s
    for component, process in started:
        wait_healthy(settings, component, process, deadline)
    wait_scheduler(settings, deadline)
    on_step(f"the serving cluster: gateway on {settings.gateway_url}, champions live")
    serving_up(settings, on_step=on_step)
    return settings


def up_event_stream(
    settings: Settings, supervised: bool = True, timeout_s: float = 90.0
) -> Settings:
    """Only the event stream (its broker, unless one is configured, and the consumer), with the
    supervisor that restarts them: what the gateway needs to take events, without Airflow or
    MLflow (the serving tests, benchmarks/events.py). `down` stops them as part of the stack."""
    settings, env = stack_env(settings)
    (settings.stack_dir / "logs").mkdir(parents=True, exist_ok=True)
    wanted: list[Component] = event_stream(settings)
    if supervised:
        wanted.append(next(c for c in components(settings) if c.name == SUPERVISOR))
    started = [(c, start(settings, c, env)) for c in wanted if not running(settings, c.name)]
    deadline = time.monotonic() + timeout_s
    for component, process in started:
        wait_healthy(settings, component, process, deadline)
    return settings


def down(settings: Settings) -> list[str]:
    """Stop every component, slots included; returns the names stopped."""
    from serving.cluster import down as serving_down

    settings, _ = stack_env(settings)
    names = [c.name for c in components(settings)]
    stopped = [name for name in reversed(names) if running(settings, name)]
    stop(settings, SUPERVISOR)  # first: it would restart the others
    # each drains on its own (up to its grace period): side by side, not one after another
    rest = [name for name in names if name != SUPERVISOR]
    with ThreadPoolExecutor(len(rest) + 1) as pool:
        waits = [pool.submit(stop, settings, name) for name in rest]
        waits.append(pool.submit(serving_down, settings))
        for wait in waits:
            wait.result()
    return stopped


def status(settings: Settings) -> dict[str, int | None]:
    """Each component's pid, or None when it is not running."""
    return {c.name: running(settings, c.name) for c in components(settings)}
