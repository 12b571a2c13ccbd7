"""The supervisor: a component of the stack that restarts any other component that died, as
systemd's or Kubernetes' restart policy would. `up` starts it as `python -m aisle.stack
supervise` (__main__.py); `down` stops it first."""

from __future__ import annotations

import logging
import signal
import time

from core.settings import Settings

from .environment import stack_env
from .processes import pid_file, running, start
from .roster import SUPERVISOR, components

RESTART_PAUSE_S = 10  # give a restart time before the next


def supervise(settings: Settings, every_s: float = 5.0) -> None:
    """Restart any component that died: an Airflow scheduler exits when its database goes away
    (a PostgreSQL restart), a Celery worker may be killed; both come back, and their runs go
    on. Runs until SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    log = logging.getLogger("aisle.stack.supervise")
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    _, env = stack_env(settings)
    restarts: dict[str, float] = {}
    while not stopping:
        for component in components(settings):
            if component.name == SUPERVISOR or running(settings, component.name):
                continue
            if not pid_file(settings, component.name).exists():
                continue  # stopped on purpose (`down`), not died
            if time.monotonic() - restarts.get(component.name, -60.0) < RESTART_PAUSE_S:
                continue
            log.warning("%s is not running: restarting it", component.name)
            start(settings, component, env)
            restarts[component.name] = time.monotonic()
        time.sleep(every_s)
