"""The four policies inside the settings: how drift is judged (`drift`), how far a training set
may move (`data_checks`), what a new model version must show (`gate`), and when a challenger
takes live traffic (`promotion`). Each is one nested setting, set field by field through the
nested delimiter, e.g. AISLE_GATE__PRICING_MARGIN=0.002."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DriftPolicy(BaseModel):
    """How drift is judged (monitoring.drift) and when it retrains a model. Set one with e.g.
    AISLE_DRIFT__PER_COLUMN_THRESHOLD='{"price_ratio": 0.2}' or AISLE_DRIFT__COOLDOWN_HOURS=48."""

    numerical_method: str = Field(
        "wasserstein", description="Evidently method for numerical columns (normed Wasserstein)."
    )
    numerical_threshold: float = Field(0.1, gt=0, description="... and its threshold.")
    categorical_method: str = Field(
        "jensenshannon", description="Evidently method for categorical columns."
    )
    categorical_threshold: float = Field(0.1, gt=0, description="... and its threshold.")
    per_column_method: dict[str, str] = Field(
        default_factory=dict, description="Column -> Evidently method, overriding the default."
    )
    per_column_threshold: dict[str, float] = Field(
        default_factory=lambda: {"item_known": 0.05, "price_ratio": 0.15},
        description="Column -> threshold, overriding the default. Chosen on the simulator's "
        "validation seed (benchmarks/drift.py): item_known 0.05, as a few % of traffic on "
        "items the model never saw is news; price_ratio 0.15, as weekly price draws and deals "
        "move a day's ratios up to 0.12 on clean days.",
    )
    volume_tolerance: float = Field(
        0.15,
        gt=0,
        description="Volume drift: the window's rows move this far from the same "
        "weekdays' (the floor of its calibrated tolerance).",
    )
    reference_days: int = Field(
        28, ge=1, description="Days before the check's window that form its reference."
    )
    cooldown_hours: float = Field(
        72.0, ge=0, description="A model is retrained for drift at most once in this long."
    )
    calibration_chunks: int = Field(
        10,
        ge=0,
        description="Calibrated thresholds: the intervals of the interval's length "
        "before the reference end, each checked as the live check would have checked it, "
        "whose scores give each column its own null distribution (0: fixed thresholds only).",
    )
    min_calibration_chunks: int = Field(
        4,
        ge=2,
        description="Fewer calibration chunks than this (a young shop): the fixed "
        "thresholds stand, and the check says so.",
    )
    calibration_sigmas: float = Field(
        3.0,
        gt=0,
        description="A column's calibrated threshold: the mean of its calibration "
        "scores + this many standard deviations (NannyML's StandardDeviationThreshold), never "
        "below its fixed threshold.",
    )
    min_drifted_share: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Drift is confirmed when the drifted columns carry at least "
        "this share of the weight (the champion's feature importance where it gives one, else "
        "equal weights), or the volume moved.",
    )
    seasonal_reference: bool = Field(
        True,
        description="Where a year of history exists, a column that drifts but not "
        "against the same weeks a year earlier is seasonal: reported, not confirmed.",
    )
    retrain_on_drift: bool = Field(
        False,
        description="Retrain on confirmed drift alone. Off: drift is reported, and a "
        "model is retrained when its realised performance drops below its band (or it has no "
        "champion yet).",
    )


class PerformancePolicy(BaseModel):
    """How a champion's realised performance on an interval is judged against the band its own
    test window gives (monitoring.performance). Set one with e.g.
    AISLE_PERFORMANCE__CONFIDENCE=0.995."""

    confidence: float = Field(
        0.99,
        gt=0.5,
        lt=1,
        description="A drop is significant when the realised metric falls "
        "below the (1 - confidence) quantile of the bootstrap band.",
    )
    bootstrap_rounds: int = Field(1000, ge=100, description="Bootstrap draws of the band.")
    min_units: int = Field(
        30,
        ge=1,
        description="Fewer users (recommender) or shelves (pricing) with outcomes in "
        "an interval: its performance is reported, not judged.",
    )
    history_days: int = Field(
        90,
        gt=0,
        description="The recommender's realised metric: each shopper's history is "
        "their interactions in this many days before the interval.",
    )
    seed: int = Field(0, description="Seed of the bootstrap (the band is reproducible).")


class DataChecksPolicy(BaseModel):
    """How far a training set may differ from the last accepted one (monitoring.data_checks).
    Set one with e.g. AISLE_DATA_CHECKS__ROW_CHANGE_TOLERANCE=0.3."""

    row_change_tolerance: float = Field(
        0.5, gt=0, description="Rows may move this share away from the last accepted set's."
    )
    max_new_category_share: float = Field(
        0.2, ge=0, le=1, description="Largest share of rows with a store/item/category unseen."
    )


class GatePolicy(BaseModel):
    """What a new model version must show before it becomes the `challenger` (training.gate).
    Set one with e.g. AISLE_GATE__RECOMMENDER_MARGIN=0.005."""

    recommender_margin: float = Field(
        0.001, gt=0, description="NDCG@10 the challenger must gain over the champion."
    )
    recommender_tolerance: float = Field(
        0.01, ge=0, description="Recall@10 and Hit@10 may fall this far below the champion's."
    )
    recommender_min_ndcg: float = Field(
        0.0, ge=0, description="Absolute NDCG@10 floor, beside beating popularity on the same rows."
    )
    pricing_margin: float = Field(
        0.001, gt=0, description="RMSE of log(1+units) the challenger must cut from the champion's."
    )
    pricing_tolerance: float = Field(
        0.01, ge=0, description="MAE of log(1+units) may rise this far above the champion's."
    )
    pricing_max_rmse: float | None = Field(
        None, gt=0, description="Absolute RMSE ceiling, beside beating the strongest reference."
    )
    behaviour_sample: int = Field(200, ge=1, description="Rows the behavioural tests run on.")


class PromotionPolicy(BaseModel):
    """When a challenger may take the live colour's traffic, and when it loses it again
    (serving.promotion; Argo Rollouts' blue-green analysis). Set one with e.g.
    AISLE_PROMOTION__ANALYSIS_SECONDS=60."""

    mode: Literal["blue-green", "experiment"] = Field(
        "blue-green",
        description="What promote_model does with a challenger: blue-green (shadow, flip, "
        "analysis window, then the champion alias) or experiment (an online A/B test against "
        "the champion; the experiment_monitor DAG's decision moves the alias).",
    )
    ready_timeout_s: float = Field(180.0, gt=0, description="Wait this long for a slot's /readyz.")
    smoke_timeout_s: float = Field(10.0, gt=0, description="Timeout of each smoke request.")
    shadow_share: float = Field(
        0.25, gt=0, le=1, description="Share of live requests mirrored to the challenger."
    )
    shadow_seconds: float = Field(
        10.0, ge=0, description="How long live traffic is mirrored before the flip."
    )
    shadow_min_requests: int = Field(
        30, ge=1, description="Compared requests needed; recent requests are replayed to top up."
    )
    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="Largest share of failed requests (shadow and analysis)."
    )
    max_p99_ms: float = Field(
        500.0, gt=0, description="Largest p99 latency a colour may show after the flip."
    )
    p99_ratio: float = Field(
        3.0, ge=1, description="Shadow p99 may be at most this times the live colour's p99 ..."
    )
    p99_floor_ms: float = Field(50.0, ge=0, description="... or this, whichever is larger.")
    analysis_seconds: float = Field(
        15.0, ge=0, description="Post-promotion analysis window: a breach in it rolls back."
    )
    analysis_interval_s: float = Field(1.0, gt=0, description="How often the window is checked.")
    analysis_min_requests: int = Field(
        10, ge=1, description="Requests a check needs before its p99 counts."
    )
    min_recommend_overlap: float = Field(
        0.0, ge=0, le=1, description="Least mean top-k overlap with the live colour's answers."
    )
    max_price_gap_pct: float = Field(
        50.0, gt=0, description="Largest gap between the challenger's and live prices, percent."
    )


class QuotingPolicy(BaseModel):
    """The shop's house style for prices (training.pricing.quoting): the step every quote is a
    multiple of and the endings it prefers, applied wherever a request's guardrails leave them
    out. Set one with e.g. AISLE_QUOTING__PRICE_STEP=0.05 or
    AISLE_QUOTING__PRICE_ENDINGS='[0.99, 0.49]'."""

    price_step: float = Field(
        0.01, gt=0, description="Every quote is a whole multiple of this (whole cents, e.g. 0.05)."
    )
    price_endings: tuple[float, ...] | None = Field(
        None,
        description="Preferred endings, e.g. [0.99, 0.49]: quotes end in .99 or .49 (default: "
        "any ending on the step).",
    )
    endings_fallback: bool = Field(
        True,
        description="Where no price with a preferred ending fits the guardrails, quote on the "
        "step with a note (true), or refuse the quote naming price_endings (false).",
    )
    currency: str = Field("$", description="Written before amounts a shopper reads ($2.49).")


class SparkEngine(BaseModel):
    """Where Apache Spark runs when AISLE_ENGINE=spark (features.engines): `master` is
    local[*] on one machine, a cluster URL in production (spark://host:7077, k8s://https://...,
    yarn). Set with e.g. AISLE_SPARK__MASTER=spark://spark-master:7077."""

    master: str = Field(
        "local[*]", min_length=1, description="spark.master: local[*], spark://..., k8s://..."
    )
    driver_memory: str = Field(
        "2g",
        pattern=r"^[0-9]+[kmgt]?$",
        description="spark.driver.memory: the driver's heap, the bound its memory stays within "
        "however many labels a training set has.",
    )
    shuffle_partitions: int = Field(
        8,
        ge=1,
        description="spark.sql.shuffle.partitions (Spark's 200 suit a cluster, not a laptop).",
    )
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="Any further spark.* settings, e.g. the Kubernetes ones "
        "(spark.kubernetes.container.image, spark.kubernetes.namespace); these win.",
    )
    submit: bool = Field(
        False,
        description="Airflow submits the feature-table build as a Spark application "
        "(SparkSubmitOperator, Airflow's Spark provider, connection spark_default) instead of "
        "running it in the task's own process: the production profile on a cluster.",
    )

    def spark_conf(self) -> dict[str, str]:
        """Every spark.* setting a session of Aisle's starts with."""
        return {
            "spark.master": self.master,
            "spark.driver.memory": self.driver_memory,
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.sql.session.timeZone": "UTC",
            "spark.ui.enabled": "false",
            **self.conf,
        }
