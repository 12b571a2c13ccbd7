"""One settings object for the whole system, read from the environment (prefix `AISLE_`).

Nothing happens at import: call `get_settings()` where the value is needed. The package's parts:

    fields.py     Settings: every setting, its validators, get_settings
    paths.py      the data folder's zones, the servers' URLs, the production databases
    policies.py   the drift, data-check, gate, promotion and quoting policies (AISLE_GATE__...)
    stream.py     the event stream: broker, batching, answer log (AISLE_EVENTS__...)
    experiments.py  online experiments: metrics, windows, stopping, guardrails
"""

from .experiments import METRICS, UNITS, ExperimentPolicy
from .fields import BUILTIN_SOURCES, SECRET_FIELDS, TASKS_AT_ONCE, Settings, get_settings
from .policies import (
    DataChecksPolicy,
    DriftPolicy,
    GatePolicy,
    PerformancePolicy,
    PromotionPolicy,
    QuotingPolicy,
    SparkEngine,
)
from .stream import EventStream

__all__ = [
    "BUILTIN_SOURCES",
    "METRICS",
    "SECRET_FIELDS",
    "TASKS_AT_ONCE",
    "UNITS",
    "DataChecksPolicy",
    "DriftPolicy",
    "EventStream",
    "ExperimentPolicy",
    "GatePolicy",
    "PerformancePolicy",
    "PromotionPolicy",
    "QuotingPolicy",
    "Settings",
    "SparkEngine",
    "get_settings",
]
