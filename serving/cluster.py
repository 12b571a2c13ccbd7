"""The local cluster: the gateway and one live slot per model, as processes on this machine.

up(settings)      start the gateway (if not running) and, for each model with a registered
                  version, its champion (else its challenger) in the live colour
down(settings)    stop every slot and the gateway
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from core.audit import AuditLog
from core.processes import alive, child_environment, terminate
from core.settings import Settings

from .admin import GatewayAdmin
from .routing import MODELS
from .slots import LocalSlots, SlotFailed


class ClusterError(RuntimeError):
    pass


@dataclass(frozen=True)
class Live:
    model: str
    colour: str | None
    version: str | None
    note: str


def gateway_pid_file(settings: Settings):
    return settings.serving_dir / "gateway.pid"


def start_gateway(settings: Settings, timeout_s: float = 60.0) -> int:
    """The gateway process (reused when it already runs); returns its pid."""
    pid_file = gateway_pid_file(settings)
    if pid_file.exists() and alive(int(pid_file.read_text())) and _healthy(settings):
        return int(pid_file.read_text())
    log = settings.serving_dir / "logs" / "gateway.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = child_environment(
        settings.to_env(),
        settings.secrets_env(),
        {"AISLE_DATA_DIR": str(settings.data_dir.resolve())},
    )
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving.gateway"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(f"the gateway exited at start; see {log}")
        if _healthy(settings):
            return process.pid
        time.sleep(0.3)
    raise ClusterError(f"the gateway did not answer on {settings.gateway_url}; see {log}")


def _healthy(settings: Settings) -> bool:
    try:
        return httpx.get(settings.gateway_url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def up(settings: Settings, on_step=print) -> list[Live]:
    """Bring both models live behind the gateway; idempotent."""
    from .promotion import PromotionError, challenger_version

    admin = GatewayAdmin(settings)  # refuses early without a token
    audit = AuditLog(settings)
    start_gateway(settings)
    on_step(f"gateway on {settings.gateway_url}")
    slots = LocalSlots(settings)
    routes = admin.status()
    started, lives = [], []
    for model in MODELS:
        version, note = _serving_version(settings, model, challenger_version, PromotionError)
        if version is None:
            lives.append(Live(model, None, None, note))
            continue
        colour = routes[model]["active"] or "blue"
        running = slots.get(model, colour)
        if running is None or running.version != version:
            on_step(f"starting {model} version {version} in {colour}")
            started.append(slots.deploy(model, colour, version))
        else:
            started.append(running)
        lives.append(Live(model, colour, version, note))
    for slot in started:
        try:
            slots.wait_ready(slot, settings.promotion.ready_timeout_s)
        except SlotFailed as exc:
            raise ClusterError(str(exc)) from None
        admin.set_slot(slot.model, slot.colour, slot.url)
        if routes[slot.model]["active"] != slot.colour:
            admin.switch(slot.model, slot.colour)
        audit.write(slot.model, "serve up", "live", colour=slot.colour, version=slot.version)
    return lives


def _serving_version(settings, model, challenger_version, error) -> tuple[str | None, str]:
    from mlflow import MlflowClient

    from training.tracking import CHAMPION, point_at_store

    point_at_store(settings)
    try:
        return MlflowClient().get_model_version_by_alias(model, CHAMPION).version, "champion"
    except Exception:  # no champion yet
        pass
    try:
        return challenger_version(settings, model), "challenger (no champion yet)"
    except error:
        return None, f"no registered {model}: train one (`aisle train {model} --end ...`)"


def down(settings: Settings) -> None:
    slots = LocalSlots(settings)
    for model in MODELS:
        for colour in ("blue", "green"):
            slots.stop(model, colour)
    pid_file = gateway_pid_file(settings)
    if pid_file.exists():
        terminate(int(pid_file.read_text()))
        pid_file.unlink()
