"""Slots: where a model version runs. Each model has two, blue and green.

`LocalSlots` (the embedded default) runs each slot as a `bentoml serve` process on this machine,
port `slot_port_base + 1..4`, its log in <data_dir>/serving/logs/, its pid and version in
<data_dir>/serving/slots.json. `serving.kubernetes.KubernetesSlots` does the same with a
Deployment per slot. The promotion code sees only this interface.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import httpx

from core.processes import alive, child_environment, kill_tree, terminate
from core.settings import Settings

SERVICES = {
    "recommender": "serving.recommender_service:RecommenderService",
    "pricing": "serving.pricing_service:PricingService",
}
COLOUR_INDEX = {("recommender", "blue"): 1, ("recommender", "green"): 2,
                ("pricing", "blue"): 3, ("pricing", "green"): 4}  # fmt: skip


class SlotFailed(RuntimeError):
    """A slot did not become ready; the message carries the end of its log."""


@dataclass(frozen=True)
class Slot:
    model: str
    colour: str
    version: str
    url: str
    pid: int | None = None
    started: float = 0.0


class Slots(Protocol):
    def deploy(self, model: str, colour: str, version: str) -> Slot: ...
    def wait_ready(self, slot: Slot, timeout_s: float) -> None: ...
    def stop(self, model: str, colour: str) -> None: ...
    def get(self, model: str, colour: str) -> Slot | None: ...
    def switch(self, model: str, colour: str) -> None: ...


class LocalSlots:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.serving_dir
        self.state_file = self.dir / "slots.json"

    def url(self, model: str, colour: str) -> str:
        port = self.settings.slot_port_base + COLOUR_INDEX[(model, colour)]
        return f"http://{self.settings.serving_host}:{port}"

    def log_file(self, model: str, colour: str) -> Path:
        return self.dir / "logs" / f"{model}-{colour}.log"

    def chaos_file(self, model: str, colour: str) -> Path:
        return self.dir / "chaos" / f"{model}-{colour}.json"

    # -- state -------------------------------------------------------------------------------
    def _state(self) -> dict[str, dict]:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def _save(self, state: dict[str, dict]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_suffix(".partial")
        partial.write_text(json.dumps(state, indent=2))
        partial.replace(self.state_file)

    def get(self, model: str, colour: str) -> Slot | None:
        found = self._state().get(f"{model}/{colour}")
        if not found:
            return None
        slot = Slot(**found)
        return slot if slot.pid is None or alive(slot.pid) else None

    def all(self) -> list[Slot]:
        return [s for key in self._state() if (s := self.get(*key.split("/"))) is not None]

    # -- processes ---------------------------------------------------------------------------
    def deploy(self, model: str, colour: str, version: str) -> Slot:
        """Start `version` of `model` in the `colour` slot (stopping what ran there)."""
        self.stop(model, colour)
        url = self.url(model, colour)
        port = url.rsplit(":", 1)[1]
        env = child_environment(
            self.settings.to_env(),
            self.settings.secrets_env(),
            {
                "AISLE_DATA_DIR": str(self.settings.data_dir.resolve()),
                "AISLE_SERVE_MODEL_URI": f"models:/{model}/{version}",
                "AISLE_SERVING_GPU": str(self.settings.serving_gpu).lower(),
                "BENTOML_DO_NOT_TRACK": "true",
            },
        )
        if os.environ.get("AISLE_SERVING_CHAOS") == "1":  # fault injection: load tests only
            env["AISLE_SERVING_CHAOS_FILE"] = str(self.chaos_file(model, colour))
        log = self.log_file(model, colour)
        log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "bentoml", "serve", SERVICES[model],
                   "--host", self.settings.serving_host, "--port", port]  # fmt: skip
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        slot = Slot(model, colour, str(version), url, process.pid, time.time())
        state = self._state()
        state[f"{model}/{colour}"] = asdict(slot)
        self._save(state)
        return slot

    def wait_ready(self, slot: Slot, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if slot.pid is not None and not alive(slot.pid):
                raise SlotFailed(f"{slot.model} {slot.colour} exited at start:\n{self._tail(slot)}")
            try:
                if httpx.get(slot.url + "/readyz", timeout=2).status_code == 200:
                    return self._check_version(slot)
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SlotFailed(
            f"{slot.model} {slot.colour} not ready after {timeout_s:.0f} s:\n{self._tail(slot)}"
        )

    def _check_version(self, slot: Slot) -> None:
        """The process answering on the slot's port must serve the version deployed (not, say,
        a leftover process of an earlier run holding the port)."""
        headers = {}
        if self.settings.api_keys:
            headers["X-API-Key"] = self.settings.api_keys[0].get_secret_value()
        answer = httpx.post(slot.url + "/model", json={}, headers=headers, timeout=5)
        served = answer.json().get("version") if answer.status_code == 200 else None
        if served != slot.version:
            raise SlotFailed(
                f"{slot.url} answers as version {served!r} ({answer.status_code}), not "
                f"{slot.version}: is another process holding the port?\n{self._tail(slot)}"
            )

    def stop(self, model: str, colour: str) -> None:
        state = self._state()
        found = state.pop(f"{model}/{colour}", None)
        if found and found.get("pid"):
            terminate(found["pid"])
        self._save(state)

    def switch(self, model: str, colour: str) -> None:
        """Nothing to do: locally the gateway's switch is the only one."""

    def kill(self, model: str, colour: str) -> None:
        """SIGKILL the slot's processes, as a crash would (the fault tests use it)."""
        slot = self.get(model, colour)
        if slot and slot.pid:
            kill_tree(slot.pid)

    def _tail(self, slot: Slot, lines: int = 30) -> str:
        path = self.log_file(slot.model, slot.colour)
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
