"""Online experiments' settings (AISLE_EXPERIMENTS__...): how outcomes are attributed to answers,
what an experiment is judged on, when it stops, and the guardrails the gateway watches."""

from __future__ import annotations

from pydantic import BaseModel, Field

# What each model's experiments can be judged on: a unit's sum over its exposures (a shopper's
# clicks, purchases and revenue; a shelf's units, revenue and profit).
METRICS = {
    "recommender": ("clicks", "carts", "purchases", "revenue"),
    "pricing": ("units", "revenue", "profit"),
}
# The unit of randomisation: one shopper always sees one arm; one shelf (item x store) has one
# price at a time.
UNITS = {"recommender": "user_id", "pricing": "item_id x store_id"}


class ExperimentPolicy(BaseModel):
    """Set one with e.g. AISLE_EXPERIMENTS__CONFIDENCE=0.99."""

    confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Interval size of the sequential test (two-sided)."
    )
    expected_units: dict[str, int] = Field(
        default_factory=lambda: {"recommender": 20_000, "pricing": 20_000},
        description="Per model, the units (both arms) an experiment plans to reach: shoppers for "
        "the recommender, shelf-days for pricing. The sequential test spends its error over the "
        "looks by the share of this reached; reaching it without a significant difference stops "
        "the experiment for futility.",
    )
    share: float = Field(0.5, gt=0, lt=1, description="Default share of units in the challenger.")
    unit_window_hours: dict[str, float] = Field(
        default_factory=lambda: {"recommender": 24.0, "pricing": 168.0},
        description="Per model, a unit is judged on its outcomes over this window after its first "
        "answer, and counts once the window has closed (0: every outcome up to the look). A "
        "value still growing after its unit counted breaks the sequential test's error spending "
        "(measured on a shopper's purchases: 8.5 % A/A false positives without, 4.5 % with "
        "24 h). Shelves are all priced from the first day, so their count never grows: a "
        "pricing experiment is decided once, on each shelf's first week (a frozen value read "
        "again at later looks adds no false positive).",
    )
    primary_metric: dict[str, str] = Field(
        default_factory=lambda: {"recommender": "purchases", "pricing": "profit"},
        description="Default primary metric per model (METRICS lists the choices).",
    )
    guardrail_metrics: dict[str, list[str]] = Field(
        default_factory=lambda: {"recommender": ["clicks"], "pricing": []},
        description="Metrics the challenger must not make significantly worse.",
    )
    click_window_minutes: float = Field(
        30.0, gt=0, description="A recommended item viewed this soon after the answer is a click."
    )
    purchase_window_hours: float = Field(
        24.0, gt=0, description="Carts and purchases this soon after the answer are credited to it."
    )
    pre_period_days: float = Field(
        7.0,
        ge=0,
        description="Each unit's outcome over this many days before the start is its CUPED "
        "covariate (0: no variance reduction).",
    )
    guardrail_window_s: float = Field(
        60.0, gt=0, description="The gateway judges errors and p99 over this trailing window."
    )
    guardrail_min_requests: int = Field(
        30, ge=1, description="Requests the challenger needs in the window before it is judged."
    )
    max_quote_violations: int = Field(
        0,
        ge=0,
        description="Challenger quotes outside their guardrails tolerated before the experiment "
        "ends (the pricing service never answers one; a breach means a broken model).",
    )
