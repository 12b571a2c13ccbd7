"""Online experiments at the gateway: while one runs for a model, both colours are live and each
request goes to the arm its unit is assigned to, by a deterministic hash.

The unit of randomisation (core.settings.UNITS) is the shopper for the recommender (one shopper
always sees one arm) and the shelf, item x store, for pricing (a shelf has one price at a time).
A unit is in the treatment arm when sha256("<experiment id>:<unit>") falls below the share: the
same unit gets the same arm on every request, on every gateway replica and after a restart, and
a new experiment reshuffles the units. The answer log records the assigned arm beside the colour
that answered (they differ only while failover sends a unit to the other colour): the analysis
compares arms as assigned (intention to treat).

A batch call whose elements fall into both arms is split, each part sent to its arm's colour,
and the answers put back in the order asked.

The gateway also watches the guardrails all along (`Guardrails.breach`): the challenger's error
rate and p99 over a trailing window, and its quotes that break their own guardrails. A breach
ends the experiment at once and sends all traffic to the champion.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from core.arms import arm_of

ARMS = ("control", "treatment")
__all__ = ["ARMS", "Experiment", "arm_of", "merge_batch", "quote_violations",
           "split_batch", "unit_of"]  # fmt: skip


@dataclass(frozen=True)
class Experiment:
    """One experiment on one model: the champion's colour is the control arm, the challenger's
    the treatment arm, which takes `share` of the units."""

    id: str
    model: str
    control: str  # colour
    treatment: str  # colour
    share: float
    metric: str
    control_version: str | None = None
    treatment_version: str | None = None
    guardrail_metrics: tuple[str, ...] = ()
    started_at: float = 0.0  # unix seconds
    status: str = "running"  # running | ended
    ended_at: float | None = None
    ended_reason: str | None = None
    unit: str = ""  # how units are named, for people (core.settings.UNITS)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def ended(self, reason: str, at: float) -> Experiment:
        return replace(self, status="ended", ended_at=at, ended_reason=reason)

    def colour_of(self, arm: str) -> str:
        return self.treatment if arm == "treatment" else self.control

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "guardrail_metrics": list(self.guardrail_metrics)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["guardrail_metrics"] = tuple(known.get("guardrail_metrics") or ())
        return cls(**known)


def unit_of(model: str, request: Any) -> str | None:
    """The unit a request (one element of a batch) belongs to; None when it names none."""
    if not isinstance(request, dict):
        return None
    if model == "recommender":
        user = request.get("user_id")
        return None if user is None else str(user)
    item, store = request.get("item_id"), request.get("store_id")
    return None if item is None or store is None else f"{item}|{store}"


def split_batch(experiment: Experiment, body: bytes) -> dict[str, tuple[list[int], bytes]] | None:
    """A batch body split by arm: {arm: (positions asked, body of those requests)}; None when
    the body is not a batch we can read (it then goes whole to the control arm, and the slot
    answers its error)."""
    try:
        asked = json.loads(body)
    except ValueError:
        return None
    requests = asked.get("requests") if isinstance(asked, dict) else None
    if not isinstance(requests, list):
        return None
    parts: dict[str, list[int]] = {}
    for i, one in enumerate(requests):
        arm = arm_of(experiment.id, unit_of(experiment.model, one), experiment.share)
        parts.setdefault(arm, []).append(i)
    return {
        arm: (
            positions,
            json.dumps({**asked, "requests": [requests[i] for i in positions]}).encode(),
        )
        for arm, positions in parts.items()
    }


def merge_batch(path: str, parts: dict[str, tuple[list[int], bytes]]) -> bytes:
    """The answers of a split batch put back in the order asked. /recommend_batch answers a list;
    /price_batch {"results": [...], "model_version"} (the control's version on top; each quote
    names its own)."""
    size = sum(len(positions) for positions, _ in parts.values())
    merged: list[Any] = [None] * size
    top: dict[str, Any] = {}
    for arm in ("treatment", "control"):  # the control's top-level fields win
        if arm not in parts:
            continue
        positions, payload = parts[arm]
        answer = json.loads(payload)
        elements = answer if path == "/recommend_batch" else answer.get("results", [])
        if path != "/recommend_batch":
            top.update({k: v for k, v in answer.items() if k != "results"})
        for position, element in zip(positions, elements, strict=True):
            merged[position] = element
    return json.dumps(merged if path == "/recommend_batch" else {**top, "results": merged}).encode()


def quote_violations(asked: Any, answer: Any) -> list[str]:
    """The guardrails a quote breaks, judged on the request's own guardrails (and the cost):
    the pricing service never answers such a quote, so one means a broken challenger."""
    from training.pricing.quoting.guardrails import Guardrails, violations

    if not isinstance(asked, dict) or not isinstance(answer, dict) or "price" not in answer:
        return []
    try:
        guardrails = Guardrails(**(asked.get("guardrails") or {}))
        return violations(
            float(answer["price"]), float(answer["cost"]), guardrails, answer.get("current_price")
        )
    except Exception as exc:  # a quote we cannot even check is itself a violation
        return [f"unreadable quote: {exc}"]
