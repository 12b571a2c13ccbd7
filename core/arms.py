"""The arm of a unit in an experiment, the one rule the gateway routes by and every simulation
of an experiment follows: the unit is in the treatment arm when sha256("<experiment id>:<unit>"),
read as a number in [0, 1), falls below the treatment share. Sticky (the same unit, the same arm,
on every replica and after a restart) and fresh per experiment (a new id reshuffles units)."""

from __future__ import annotations

import hashlib


def position(experiment_id: str, unit: str) -> float:
    """The unit's place in [0, 1) for this experiment."""
    digest = hashlib.sha256(f"{experiment_id}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm_of(experiment_id: str, unit: str | None, share: float) -> str:
    """ "treatment" or "control"; a request naming no unit is control (its slot refuses it)."""
    if unit is None:
        return "control"
    return "treatment" if position(experiment_id, unit) < share else "control"
