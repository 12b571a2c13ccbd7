"""Protocol B training sets: a temporal split at day boundaries, histories from Feast.

    train_end = end - test_days - valid_days      valid_end = end - test_days      end
    |---- history at train_end (model input) ----|---- valid targets ----|---- test targets ----|

* The model is fit on every user's history as Feast knew it at `train_end` (`user_history_fv`,
  point-in-time: built from events strictly before that moment), the same feature the online
  store serves.
* Validation targets are the items a user touched in [train_end, valid_end) that were not in
  that history; early stopping and tuning look only at them.
* Test scores each user from the history known at `valid_end` (what serving would have fed the
  model then) and its targets are the new items of [valid_end, end): nothing after a boundary
  reaches anything before it.

The training set is one parquet file per data interval: rows (user_id, role, as_of,
history_item_ids, target_item_ids), role `fit` (as of train_end, valid targets) or `test` (as of
valid_end, test targets). Tasks pass its path, never frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import scipy.sparse as sp

from core.settings import Settings
from features.feature_tables import latest_snapshot
from training.training_sets import (
    TrainingSetEmpty,
    Windows,
    curated_files,
    read_training_set,
    training_set_path,
    write_training_set,
)

FEATURE_SERVICE = "recommender_history_v1"
HISTORY_FEATURE = "history_item_ids"
MODEL = "recommender"


def build_training_set(settings: Settings, dataset: str, windows: Windows) -> Path:
    """Write the protocol-B training set of `windows` and return its path (atomic, idempotent)."""
    from features.store import training_set

    events = _events(settings, dataset, windows.end)
    before_train = events[events.timestamp < windows.train_end]
    if before_train.empty:
        raise TrainingSetEmpty(
            f"no {dataset} interaction before {windows.train_end.isoformat()}: nothing to train "
            "on; ingest and build features for earlier days, or move the interval end later"
        )
    entities = pd.concat(
        [
            pd.DataFrame(
                {"user_id": before_train.user_id.unique(), "event_timestamp": windows.train_end}
            ),
            pd.DataFrame(
                {
                    "user_id": events[events.timestamp < windows.valid_end].user_id.unique(),
                    "event_timestamp": windows.valid_end,
                }
            ),
        ],
        ignore_index=True,
    )
    histories = training_set(settings, entities, FEATURE_SERVICE, unknown="allow")
    histories[HISTORY_FEATURE] = histories[HISTORY_FEATURE].map(
        lambda v: [] if v is None or (isinstance(v, float) and np.isnan(v)) else list(v)
    )
    fit = _with_targets(histories, events, windows.train_end, windows.valid_end, "fit")
    test = _with_targets(histories, events, windows.valid_end, windows.end, "test")
    frame = pd.concat([fit, test], ignore_index=True)
    path = training_set_path(settings, MODEL, dataset, windows)
    metadata = {
        "dataset": dataset,
        "feature_service": FEATURE_SERVICE,
        "windows": windows.to_dict(),
        "categories": _categories(settings, dataset, windows),
    }
    return write_training_set(frame, metadata, path)


def _events(settings: Settings, dataset: str, end: datetime) -> pd.DataFrame:
    files = curated_files(settings, dataset, "interactions", end)
    sql = """SELECT user_id, item_id, "timestamp" FROM read_parquet($files)
             WHERE "timestamp" < $end ORDER BY "timestamp", user_id, item_id"""
    with duckdb.connect() as con:
        frame = con.execute(sql, {"files": files, "end": end}).df()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def _with_targets(
    histories: pd.DataFrame, events: pd.DataFrame, start: datetime, end: datetime, role: str
) -> pd.DataFrame:
    as_of = pd.Timestamp(start)
    rows = histories[pd.to_datetime(histories.event_timestamp, utc=True) == as_of]
    window = events[(events.timestamp >= start) & (events.timestamp < end)]
    touched = window.groupby("user_id")["item_id"].agg(lambda s: list(dict.fromkeys(s)))
    out = pd.DataFrame(
        {
            "user_id": rows.user_id.to_numpy(),
            "role": role,
            "as_of": as_of,
            "history_item_ids": rows[HISTORY_FEATURE].to_numpy(),
        }
    )
    out["target_item_ids"] = [
        [i for i in touched.get(u, []) if i not in known]
        for u, known in zip(out.user_id, map(set, out.history_item_ids), strict=True)
    ]
    return out.sort_values("user_id", ignore_index=True)


def _categories(settings: Settings, dataset: str, windows: Windows) -> dict[str, str]:
    """Each item's first category in the snapshot known at valid_end (for category filters)."""
    from features.feature_tables import CATEGORIES_SQL

    snapshot = latest_snapshot(settings, dataset, "items", windows.valid_end.date())
    if snapshot is None:
        return {}
    sql = (
        f"WITH {CATEGORIES_SQL} SELECT item_id, category FROM categories WHERE category IS NOT NULL"
    )
    with duckdb.connect() as con:
        return dict(con.execute(sql, {"item_file": str(snapshot)}).fetchall())


@dataclass(frozen=True)
class RecommenderData:
    """A training set as matrices over the item vocabulary of the fit histories."""

    item_ids: list[str]
    fit_users: list[str]
    train: sp.csr_matrix  # fit histories
    valid: sp.csr_matrix  # their validation targets
    test_users: list[str]
    test_history: sp.csr_matrix
    test_targets: sp.csr_matrix
    metadata: dict
    cold_targets: dict[str, int]  # targets on items outside the vocabulary, per role

    @classmethod
    def load(cls, path: Path) -> RecommenderData:
        frame, metadata = read_training_set(path)
        fit, test = frame[frame.role == "fit"], frame[frame.role == "test"]
        item_ids = sorted({i for h in fit.history_item_ids for i in h})
        if not item_ids:
            raise TrainingSetEmpty(f"{path}: no history to train on")
        index = {item: n for n, item in enumerate(item_ids)}
        cold: dict[str, int] = {}

        def matrix(lists: pd.Series, role: str | None = None) -> sp.csr_matrix:
            rows, cols = [], []
            for r, items in enumerate(lists):
                for item in items:
                    if item in index:
                        rows.append(r)
                        cols.append(index[item])
                    elif role is not None:
                        cold[role] = cold.get(role, 0) + 1
            data = np.ones(len(rows), dtype=np.float32)
            return sp.csr_matrix((data, (rows, cols)), shape=(len(lists), len(item_ids)))

        return cls(
            item_ids=item_ids,
            fit_users=fit.user_id.tolist(),
            train=matrix(fit.history_item_ids),
            valid=matrix(fit.target_item_ids, "valid"),
            test_users=test.user_id.tolist(),
            test_history=matrix(test.history_item_ids),
            test_targets=matrix(test.target_item_ids, "test"),
            metadata=metadata,
            cold_targets=cold,
        )

    def popularity(self) -> np.ndarray:
        """Interactions per item in the fit histories: the cold-start fallback's ranking."""
        return np.asarray(self.train.sum(axis=0), dtype=np.float32).ravel()
