"""The gateway's routing table: for each model, the colour that takes its traffic, the URL of
each colour's slot, the shadow colour with the share of requests mirrored to it, and the
model's experiment (while one runs, both colours take traffic: serving.experiments).

One `Route` per model, replaced whole on a change, never edited in place: a request reads it
once, so a flip is atomic and requests in flight finish where they started. The table starts
from the slots the settings name (AISLE_GATEWAY_SLOTS), then what <data_dir>/serving/routes.json
saved; it is saved there on every change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings

from .experiments import Experiment

MODELS = ("recommender", "pricing")
COLOURS = ("blue", "green")
SCORING_PATHS = {  # path -> the model that answers it
    "/recommend": "recommender",
    "/recommend_batch": "recommender",
    "/price": "pricing",
    "/price_batch": "pricing",
}


def other(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


@dataclass(frozen=True)
class Route:
    """Where one model's traffic goes. Replaced whole, never edited in place."""

    active: str | None = None
    slots: dict[str, str] = field(default_factory=dict)  # colour -> base URL
    shadow: str | None = None
    shadow_share: float = 0.0
    experiment: Experiment | None = None  # the latest, running or ended (serving.experiments)

    @property
    def running_experiment(self) -> Experiment | None:
        return self.experiment if self.experiment is not None and self.experiment.running else None


def routes_file(settings: Settings) -> Path:
    return settings.serving_dir / "routes.json"


def load_routes(settings: Settings) -> dict[str, Route]:
    """The settings' slots, then the saved table over them (a saved route has no shadow; its
    experiment goes on: the hash keeps every unit in its arm across a restart)."""
    routes = {model: Route() for model in MODELS}
    for model, slots in settings.gateway_slots.items():
        if model in routes and slots:
            urls = {c: u.rstrip("/") for c, u in slots.items() if c in COLOURS}
            routes[model] = Route(active=next(iter(urls)), slots=urls)
    saved_file = routes_file(settings)
    if not saved_file.exists():
        return routes
    for model, route in json.loads(saved_file.read_text()).items():
        if model in routes:
            experiment = route.get("experiment")
            routes[model] = Route(
                active=route.get("active"),
                slots=dict(route.get("slots", {})),
                experiment=Experiment.from_dict(experiment) if experiment else None,
            )
    return routes


def save_routes(settings: Settings, routes: dict[str, Route]) -> None:
    """Write the table atomically (a partial file, then a rename)."""
    saved_file = routes_file(settings)
    saved_file.parent.mkdir(parents=True, exist_ok=True)
    partial = saved_file.with_suffix(".partial")
    state = {
        m: {
            "active": r.active,
            "slots": r.slots,
            "experiment": r.experiment.to_dict() if r.experiment else None,
        }
        for m, r in routes.items()
    }
    partial.write_text(json.dumps(state, indent=2))
    partial.replace(saved_file)
