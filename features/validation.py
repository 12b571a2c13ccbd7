"""Turn raw string rows into typed canonical rows, or into rejections with the rule that failed.

Two stages, in order:
1. *Parsing* (per column kind): a required field that is empty, a number that is not one, a
   timestamp that is not ISO 8601 or unix seconds. Reason codes: `missing_<col>`, `bad_<col>`.
2. *Rules* on the typed values, declared as a pandera schema (`value_rules`): positive prices,
   quantities of at least one, known event types, event times inside the data interval and after
   1990, and so on. Each check's `error=` is its reason code.

A row that breaks several rules is rejected once, under the first rule in `REASON_ORDER`; all
its reasons are kept in `reasons`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pandera.pandas as pa

from core.schemas import EVENT_TYPES, TableSpec

from .storage import Interval

EARLIEST_EVENT = pd.Timestamp(datetime(1990, 1, 1, tzinfo=UTC))
_NOT_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "-infinity"}
_FLAGS = {"0": False, "1": True, "false": False, "true": True, "0.0": False, "1.0": True}


def parse_column(raw: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """Parse one column. Returns (typed values, mask of present-but-unparseable fields)."""
    present = raw.notna()
    text = raw.where(present, None).astype(object)
    if kind in ("id", "category", "text"):
        stripped = text.str.strip()
        return stripped.where(stripped != "", None), pd.Series(False, index=raw.index)
    if kind in ("float", "int"):
        values = pd.to_numeric(text, errors="coerce").astype("float64")
        lowered = text.str.strip().str.lower()
        not_finite = present & (lowered.isin(_NOT_FINITE) | np.isinf(values))
        bad = present & values.isna() & ~not_finite
        if kind == "int":
            bad |= present & values.notna() & (values != np.round(values))
        return values.where(~not_finite, np.nan), bad | not_finite
    if kind == "timestamp":
        return _parse_timestamps(text, present)
    if kind == "date":
        values = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        return values, present & values.isna()
    if kind == "flag":
        lowered = text.str.strip().str.lower()
        values = lowered.map(_FLAGS)
        return values, present & values.isna()
    raise ValueError(f"unknown column kind {kind!r}")


def _parse_timestamps(text: pd.Series, present: pd.Series) -> tuple[pd.Series, pd.Series]:
    stripped = text.str.strip()
    # Unix seconds have 9 to 12 digits from 1973 on; 8 digits is an ISO basic date (20240301).
    is_epoch = stripped.str.fullmatch(r"\d{9,12}").astype("boolean").fillna(False).astype(bool)
    # pandas' ISO 8601 parser applies an earlier row's UTC offset to later rows that have none,
    # so rows with and without an offset are parsed apart.
    has_offset = stripped.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    has_offset = has_offset.astype("boolean").fillna(False).astype(bool)
    values = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if is_epoch.any():
        seconds = pd.to_numeric(stripped[is_epoch])
        values[is_epoch] = pd.to_datetime(seconds, unit="s", utc=True)
    for group in (present & ~is_epoch & has_offset, present & ~is_epoch & ~has_offset):
        if group.any():
            values[group] = pd.to_datetime(
                stripped[group], utc=True, format="ISO8601", errors="coerce"
            )
    return values, present & values.isna()


def value_rules(spec: TableSpec, interval: Interval | None) -> pa.DataFrameSchema:
    """The pandera schema of the rules a typed row must satisfy (nulls are checked in parsing)."""
    checks: dict[str, list[pa.Check]] = {
        "price": [pa.Check.gt(0, error="price_not_positive")],
        "cost": [pa.Check.gt(0, error="cost_not_positive")],
        "quantity": [pa.Check.ge(1, error="quantity_below_one")],
        "units": [pa.Check.ge(0, error="units_negative")],
        "feature": [pa.Check.in_range(0, 1, error="feature_outside_0_1")],
        "event_type": [pa.Check.isin(EVENT_TYPES, error="unknown_event_type")],
    }
    if spec.time_column:
        time_checks = [pa.Check.ge(_naive(EARLIEST_EVENT, spec), error="timestamp_before_1990")]
        if interval is not None:
            # The future starts at the interval's end, or now if that is earlier: no event can
            # have happened after the run, whatever interval it was given.
            start = pd.Timestamp(interval.start)
            end = min(pd.Timestamp(interval.end), pd.Timestamp.now(tz="UTC"))
            time_checks += [
                pa.Check.lt(_naive(end, spec), error="timestamp_in_future"),
                pa.Check.ge(_naive(start, spec), error="before_interval"),
            ]
        checks[spec.time_column] = time_checks
    columns = {
        name: pa.Column(checks=rules, nullable=True, required=False)
        for name, rules in checks.items()
        if name in spec.names
    }
    # A purchase without a price is curated (an order log often has none; the recommender needs
    # no price): the summary counts them and price features read the price as missing.
    return pa.DataFrameSchema(columns, strict=False)


def _naive(ts: pd.Timestamp, spec: TableSpec) -> pd.Timestamp:
    """Dates are stored naive; timestamps are UTC-aware."""
    kind = spec.column(spec.time_column).kind if spec.time_column else "timestamp"
    return ts.tz_convert(None) if kind == "date" else ts


def reason_order(spec: TableSpec) -> list[str]:
    """Which reason names a row that breaks several rules: parsing first, then the rules."""
    parse = (
        ["empty_row"] + [f"missing_{c}" for c in spec.required] + [f"bad_{c}" for c in spec.names]
    )
    rules = [
        "unknown_event_type",
        "timestamp_before_1990",
        "timestamp_in_future",
        "before_interval",
        "price_not_positive",
        "quantity_below_one",
        "units_negative",
        "cost_not_positive",
        "feature_outside_0_1",
    ]
    return parse + rules


def validate(
    raw: pd.DataFrame, spec: TableSpec, interval: Interval | None, constants: Sequence[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split raw string rows into (typed valid rows, rejections).

    The typed frame keeps the input's index; the rejections frame is indexed like the input and
    holds `reason` (the first failed rule) and `reasons` (all of them, '; '-separated).
    `constants` are columns a column map filled with one value (not the export's own).

    Vectorised end to end (one boolean mask per reason), so a file whose every row fails costs
    about what a clean one does: pandera's lazy failure report and a per-row join of reasons
    made the quarantine path ~8x slower than the curated one.
    """
    typed = pd.DataFrame(index=raw.index)
    failures: dict[str, np.ndarray] = {}

    def fail(mask: pd.Series | np.ndarray, reason: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            failures[reason] = failures[reason] | mask if reason in failures else mask

    own = raw.drop(columns=[c for c in constants if c in raw])
    fail(own.isna().all(axis=1), "empty_row")  # a blank line, or only separators

    for column in spec.columns:
        if column.name not in raw:
            continue
        values, bad = parse_column(raw[column.name], column.kind)
        typed[column.name] = values
        fail(bad, f"bad_{column.name}")
        if column.required:
            fail(raw[column.name].isna() | (values.isna() & ~bad), f"missing_{column.name}")
    for extra in raw.columns.difference(spec.names, sort=False):  # open attribute tables
        typed[extra] = raw[extra]

    rules = value_rules(spec, None if spec.time_column is None else interval)
    positions = pd.Series(np.arange(len(typed)), index=typed.index)
    for name, column in rules.columns.items():
        if name not in typed:
            continue
        for check in column.checks:
            # A Check called on a series leaves nulls out (ignore_na): nulls are parsing's job.
            passed = check(typed[name]).check_output
            failed = np.zeros(len(typed), dtype=bool)
            failed[positions[passed.index[~passed.to_numpy(dtype=bool)]].to_numpy()] = True
            fail(failed, str(check.error))

    if not failures:
        return typed, pd.DataFrame({"reason": [], "reasons": []}, index=raw.index[:0])
    rank = {reason: i for i, reason in enumerate(reason_order(spec))}
    names = sorted(failures, key=lambda r: rank.get(r, len(rank)))  # stable for unknown ones
    matrix = np.column_stack([failures[r] for r in names])
    hit = matrix.any(axis=1)
    # Each distinct combination of reasons is named once, then mapped back onto its rows.
    combos, which = np.unique(matrix[hit], axis=0, return_inverse=True)
    labels = np.array(["; ".join(np.array(names)[c]) for c in combos], dtype=object)
    firsts = np.array([names[int(np.argmax(c))] for c in combos], dtype=object)
    which = which.reshape(-1)
    rejected = pd.DataFrame(
        {"reason": firsts[which], "reasons": labels[which]}, index=raw.index[hit]
    )
    return typed.drop(index=rejected.index), rejected
