"""What a challenger's answers must look like before it may take traffic.

`sanity(model, request, answer)` lists what is wrong with one answer on its own;
`compare(model, pairs)` what is wrong with the challenger's answers next to the live colour's
for the same requests (shadow traffic). `smoke_requests(model, recent)` are the fixed inputs a
fresh slot is asked first: requests that must be refused with a 4xx (never a 5xx) and requests
that must be answered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from core.settings import PromotionPolicy

# Fixed smoke requests: (path, body, the statuses that pass).
FIXED_SMOKE: dict[str, list[tuple[str, Any, tuple[int, ...]]]] = {
    "recommender": [
        ("/recommend", {"user_id": "aisle-smoke-cold-start", "k": 5}, (200,)),
        ("/recommend", {"user_id": "aisle-smoke", "k": 0}, (400,)),
        ("/recommend", {"user_id": "aisle-smoke", "k": "ten"}, (400,)),
        ("/recommend_batch", {"requests": [{"user_id": "a", "k": 3}, {"user_id": "b"}]}, (200,)),
    ],
    "pricing": [
        ("/price", {"item_id": "aisle-smoke-unknown", "store_id": "nowhere"}, (404,)),
        (
            "/price",
            {"item_id": "x", "store_id": "y", "guardrails": {"floor": 2, "ceiling": 1}},
            (400,),
        ),
        ("/price", {"item_id": "x", "store_id": "y", "cost": -1}, (400,)),
    ],
}


@dataclass
class CheckResult:
    name: str
    passed: bool
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "passed": self.passed, **self.figures,
                "problems": self.problems[:10]}  # fmt: skip


def smoke_requests(model: str, recent: list[dict[str, Any]]) -> list[tuple[str, Any, tuple]]:
    """The fixed inputs, then up to 10 recent live requests (which must be answered)."""
    replayed = [(r["path"], r["body"], (200,)) for r in recent[-10:] if r.get("body")]
    return FIXED_SMOKE[model] + replayed


def sanity(model: str, request: Any, answer: Any) -> list[str]:
    if model == "recommender":
        if isinstance(answer, list):  # a batch
            requests = request.get("requests", []) if isinstance(request, dict) else []
            if len(answer) != len(requests):
                return [f"batch of {len(requests)} answered with {len(answer)}"]
            return [p for q, a in zip(requests, answer, strict=True) for p in _recommendation(q, a)]
        return _recommendation(request, answer)
    if isinstance(answer, dict) and "results" in answer:
        requests = request.get("requests", []) if isinstance(request, dict) else []
        quotes = [(q, a) for q, a in zip(requests, answer["results"], strict=False) if "price" in a]
        return [p for q, a in quotes for p in _price(q, a)]
    return _price(request, answer)


def _recommendation(request: Any, answer: Any) -> list[str]:
    if not isinstance(answer, dict) or not isinstance(answer.get("items"), list):
        return [f"not a recommendation: {str(answer)[:80]}"]
    ids = [i.get("item_id") for i in answer["items"]]
    problems = []
    k = request.get("k", 10) if isinstance(request, dict) else 10
    if isinstance(k, int) and len(ids) > k:
        problems.append(f"{len(ids)} items for k={k}")
    if len(set(ids)) != len(ids):
        problems.append("duplicate items")
    if not all(isinstance(i, str) and i for i in ids):
        problems.append("an item id is not a non-empty string")
    if not all(_finite(i.get("score")) for i in answer["items"]):
        problems.append("a score is not a finite number")
    if isinstance(request, dict) and request.get("current_item") in ids:
        problems.append("recommended the item the shopper is on")
    return problems


def _price(request: Any, answer: Any) -> list[str]:
    from training.pricing.quoting import Guardrails, violations

    if not isinstance(answer, dict) or "price" not in answer:
        return [f"not a quote: {str(answer)[:80]}"]
    price = answer["price"]
    if not _finite(price) or price <= 0 or abs(price * 100 - round(price * 100)) > 1e-6:
        return [f"price {price!r} is not a whole number of cents > 0"]
    problems = []
    if not _finite(answer.get("expected_units")) or answer["expected_units"] < 0:
        problems.append(f"expected units {answer.get('expected_units')!r}")
    if answer.get("elasticity") is not None and answer["elasticity"] > 0:
        problems.append(f"demand rises with price (elasticity {answer['elasticity']:.2f})")
    rails = request.get("guardrails") if isinstance(request, dict) else None
    try:
        broken = violations(price, answer["cost"], Guardrails(**(rails or {})),
                            answer.get("current_price"))  # fmt: skip
    except (ValueError, TypeError) as exc:
        broken = [f"unverifiable ({exc})"]
    if broken:
        problems.append(f"price {price} breaks {', '.join(broken)}")
    return problems


def compare(model: str, pairs: list[dict[str, Any]], policy: PromotionPolicy) -> CheckResult:
    """The shadow's answers next to the live colour's: errors, sanity, agreement."""
    answered = [p for p in pairs if p["live_status"] == 200]
    errors = sum(1 for p in answered if p["shadow_status"] >= 500 or p["shadow_status"] == 0)
    problems = [f"{p['path']}: {q}" for p in answered if p["shadow_status"] == 200
                for q in sanity(model, p["request"], p["shadow"])]  # fmt: skip
    figures: dict[str, Any] = {"compared": len(answered), "shadow_errors": errors}
    ok = bool(answered)
    if not answered:
        problems.append("no shadow answers to compare")
    if answered and errors / len(answered) > policy.max_error_rate:
        problems.append(f"shadow error rate {errors / len(answered):.1%}")
    if model == "recommender":
        overlaps = [_overlap(p["live"], p["shadow"]) for p in answered
                    if p["shadow_status"] == 200]  # fmt: skip
        overlaps = [o for o in overlaps if o is not None]
        mean = sum(overlaps) / len(overlaps) if overlaps else None
        figures["mean_overlap"] = mean
        if mean is not None and mean < policy.min_recommend_overlap:
            problems.append(f"mean top-k overlap {mean:.2f} < {policy.min_recommend_overlap}")
    else:
        gaps = [_gap(p["live"], p["shadow"]) for p in answered if p["shadow_status"] == 200]
        gaps = [g for g in gaps if g is not None]
        figures["max_price_gap_pct"] = max(gaps) if gaps else None
        if gaps and max(gaps) > policy.max_price_gap_pct:
            problems.append(f"a price differs by {max(gaps):.0f}% from the live colour's")
    return CheckResult("shadow answers", ok and not problems, figures, problems)


def _overlap(live: Any, shadow: Any) -> float | None:
    if not (isinstance(live, dict) and isinstance(shadow, dict)):
        return None
    a = {i["item_id"] for i in live.get("items", [])}
    b = {i["item_id"] for i in shadow.get("items", [])}
    return len(a & b) / len(a) if a else None


def _gap(live: Any, shadow: Any) -> float | None:
    if not (isinstance(live, dict) and isinstance(shadow, dict)):
        return None
    if not (_finite(live.get("price")) and _finite(shadow.get("price"))) or live["price"] <= 0:
        return None
    return abs(shadow["price"] / live["price"] - 1) * 100


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
