"""Protocol B training sets: a temporal split at day boundaries, histories from Feast.

    train_end = end - test_days - valid_days      valid_end = end - test_days      end
    |---- history at train_end (model input) ----|---- valid targets ----|---- test targets ----|

* The model is fit on every user's history as Feast knew it at `train_end` (`user_history_fv`,
  point-in-time: built from events strictly before that moment), the same feature the online
  store serves.
* Validation targets are the items a user touched in [train_end, valid_end) that were not in
  that history; early stopping and tuning look only at them. The history items touched again
  there are kept apart (`repeat_item_ids`), with the user's purchases before the cut, most bought
  first (`bought_item_ids`, `bought_counts`): buy-again (buy_again.py) adds the repeats its
  setting allows to the targets when it loads the set, so one training set serves every setting.
* Test scores each user from the history known at `valid_end` (what serving would have fed the
  model then) and its targets are the new items of [valid_end, end): nothing after a boundary
  reaches anything before it.

The training set is one parquet file per data interval: rows (user_id, role, as_of,
history_item_ids, target_item_ids, repeat_item_ids, bought_item_ids, bought_counts), role `fit`
(as of train_end, valid targets) or `test` (as of valid_end, test targets). Tasks pass its path,
never frames.
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
    fit = with_targets(histories, events, windows.train_end, windows.valid_end, "fit")
    test = with_targets(histories, events, windows.valid_end, windows.end, "test")
    frame = pd.concat([fit, test], ignore_index=True)
    path = training_set_path(settings, MODEL, dataset, windows)
    metadata = {
        "dataset": dataset,
        "feature_service": FEATURE_SERVICE,
        "windows": windows.to_dict(),
        "categories": _categories(settings, dataset, windows),
        "item_names": _item_names(settings, dataset, windows),
    }
    return write_training_set(frame, metadata, path)


def _events(settings: Settings, dataset: str, end: datetime) -> pd.DataFrame:
    files = curated_files(settings, dataset, "interactions", end)
    sql = """SELECT user_id, item_id, "timestamp", event_type FROM read_parquet($files)
             WHERE "timestamp" < $end ORDER BY "timestamp", user_id, item_id"""
    with duckdb.connect() as con:
        frame = con.execute(sql, {"files": files, "end": end}).df()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def frame_from_events(events: pd.DataFrame, windows: Windows) -> pd.DataFrame:
    """The rows `build_training_set` writes, from events held in memory (a simulated shop in a
    test or a benchmark): each cut's histories as `user_history_fv` serves them (the distinct
    items touched before it, most recent first), then `with_targets`."""
    entities = []
    for cut in (windows.train_end, windows.valid_end):
        before = events[events.timestamp < cut].iloc[::-1]
        history = before.groupby("user_id").item_id.agg(lambda s: list(dict.fromkeys(s)))
        entities.append(
            pd.DataFrame(
                {
                    "user_id": history.index,
                    "event_timestamp": pd.Timestamp(cut),
                    HISTORY_FEATURE: history.to_list(),
                }
            )
        )
    histories = pd.concat(entities, ignore_index=True)
    fit = with_targets(histories, events, windows.train_end, windows.valid_end, "fit")
    test = with_targets(histories, events, windows.valid_end, windows.end, "test")
    return pd.concat([fit, test], ignore_index=True)


def with_targets(
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
    histories_known = list(map(set, out.history_item_ids))
    out["target_item_ids"] = [
        [i for i in touched.get(u, []) if i not in known]
        for u, known in zip(out.user_id, histories_known, strict=True)
    ]
    out["repeat_item_ids"] = [
        [i for i in touched.get(u, []) if i in known]
        for u, known in zip(out.user_id, histories_known, strict=True)
    ]
    bought = _most_bought(events[events.timestamp < start])
    out["bought_item_ids"] = [bought.get(u, ([], []))[0] for u in out.user_id]
    out["bought_counts"] = [bought.get(u, ([], []))[1] for u in out.user_id]
    return out.sort_values("user_id", ignore_index=True)


def _most_bought(events: pd.DataFrame) -> dict[str, tuple[list[str], list[int]]]:
    """Per user, the items purchased in `events`, most bought first (the latest purchase breaks
    ties), and their counts: the "most bought by this user" reference's input."""
    if "event_type" not in events:
        return {}
    purchases = events[events.event_type == "purchase"]
    if purchases.empty:
        return {}
    counts = (
        purchases.groupby(["user_id", "item_id"], observed=True)
        .agg(count=("timestamp", "size"), last=("timestamp", "max"))
        .reset_index()
        .sort_values(["user_id", "count", "last"], ascending=[True, False, False])
    )
    return {
        user: (rows.item_id.tolist(), rows["count"].astype(int).tolist())
        for user, rows in counts.groupby("user_id", sort=False, observed=True)
    }


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
        con.read_parquet(str(snapshot)).create_view("item_file")  # the view CATEGORIES_SQL reads
        return dict(con.execute(sql).fetchall())


def _item_names(settings: Settings, dataset: str, windows: Windows) -> dict[str, str]:
    """Each item's display name in the snapshot known at valid_end, for reasons a shopper reads
    ("because you viewed Star Wars (1977)"); none for a snapshot without a `name` column."""
    snapshot = latest_snapshot(settings, dataset, "items", windows.valid_end.date())
    if snapshot is None:
        return {}
    source = {"item_file": str(snapshot)}
    with duckdb.connect() as con:
        columns = con.execute("SELECT * FROM read_parquet($item_file) LIMIT 0", source).description
        if "name" not in {c[0] for c in columns}:
            return {}
        sql = """SELECT item_id, min(trim(CAST(name AS VARCHAR))) FROM read_parquet($item_file)
                 WHERE nullif(trim(CAST(name AS VARCHAR)), '') IS NOT NULL GROUP BY item_id"""
        return dict(con.execute(sql, source).fetchall())


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
    # Buy-again (buy_again.py): the history items touched again in each window, recency rank + 1
    # of every history item, and the test users' purchase counts before valid_end.
    valid_repeats: sp.csr_matrix | None = None
    test_repeats: sp.csr_matrix | None = None
    fit_ranks: sp.csr_matrix | None = None
    test_ranks: sp.csr_matrix | None = None
    test_bought: sp.csr_matrix | None = None

    @classmethod
    def load(cls, path: Path) -> RecommenderData:
        frame, metadata = read_training_set(path)
        fit, test = frame[frame.role == "fit"], frame[frame.role == "test"]
        item_ids = sorted({i for h in fit.history_item_ids for i in h})
        if not item_ids:
            raise TrainingSetEmpty(f"{path}: no history to train on")
        index = {item: n for n, item in enumerate(item_ids)}
        cold: dict[str, int] = {}

        def matrix(lists, role: str | None = None, values=None) -> sp.csr_matrix:
            """Users x items; an entry is 1, or `values[r][position]` where given."""
            rows, cols, data = [], [], []
            for r, items in enumerate(lists):
                for position, item in enumerate(items):
                    if item in index:
                        rows.append(r)
                        cols.append(index[item])
                        data.append(1.0 if values is None else float(values[r][position]))
                    elif role is not None:
                        cold[role] = cold.get(role, 0) + 1
            shape = (len(lists), len(item_ids))
            return sp.csr_matrix((np.asarray(data, np.float32), (rows, cols)), shape=shape)

        def ranks(lists: pd.Series) -> sp.csr_matrix:
            """Recency rank + 1 of each history item (histories are most recent first)."""
            return matrix(lists, values=[range(1, len(h) + 1) for h in lists])

        repeats = "repeat_item_ids" in frame  # sets written before buy-again have none

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
            valid_repeats=matrix(fit.repeat_item_ids) if repeats else None,
            test_repeats=matrix(test.repeat_item_ids) if repeats else None,
            fit_ranks=ranks(fit.history_item_ids),
            test_ranks=ranks(test.history_item_ids),
            test_bought=(
                matrix(test.bought_item_ids, values=list(test.bought_counts)) if repeats else None
            ),
        )

    def with_repeats(
        self, targets: sp.csr_matrix, repeats: sp.csr_matrix | None, rebuyable: np.ndarray
    ) -> sp.csr_matrix:
        """`targets` plus the `repeats` that `rebuyable` (a bool array over the vocabulary, from
        `BuyAgain.mask`) allows: protocol B's targets with buy-again on."""
        if repeats is None:
            raise ValueError(
                "this training set predates buy-again (no repeat_item_ids): build it again "
                "(aisle train recommender rebuilds it) to train with recommender_buy_again on"
            )
        allowed = repeats.multiply(rebuyable[None, :].astype(np.float32))
        return sp.csr_matrix(((targets + allowed) > 0).astype(np.float32))

    def popularity(self) -> np.ndarray:
        """Interactions per item in the fit histories: the cold-start fallback's ranking."""
        return np.asarray(self.train.sum(axis=0), dtype=np.float32).ravel()
