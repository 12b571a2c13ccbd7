"""Forget a user (the GDPR right to erasure): every row keyed by the user, in every store Aisle
keeps, and a record that it was done.

* **Files** with a `user_id` column under the data folder's zones: `raw/` (landed exports, CSV or
  parquet, and the event stream's day files), `curated/`, `features/` (Feast's offline sources),
  `training/` (training sets, whose histories are per user), the local MLflow artifact store
  (parquet, CSV and logged JSON tables), `answers/` (the answer log; a price answer has no user)
  and `events/` (the stream's transient state, such as the online store's backlog); and the
  quarantine's files, whose `raw` column keeps each rejected row, or each dead-lettered message
  of the stream, as JSON. A message that is a JSON array of events loses the user's events and
  keeps the others'; one that is not JSON at all goes if it holds the id in quotes. Each file
  holding the user is rewritten atomically without those rows.
* **The online store**: the user's entity rows of every feature view keyed by `user_id` (SQLite
  locally, Redis in production). Feast has no per-entity delete, so the rows are removed by the
  key Feast itself serialises.
* **The audit record**, `data/forget/audit.jsonl`: who, when, the sha256 of the id (never the id)
  and the rows removed per store.

The ETL run summaries in `data/runs/` keep their counts (they recorded what happened then); the
audit record says how many rows left later. Upstream exports (`data/sources/`, the shop's own
files) are the shop's to erase: a replay of an unerased export would land the user again. The
broker's own store (`events/broker/`, NATS JetStream) is not rewritten: its messages age out with
the stream's retention (a week), and a consumer that reads them again lands the user again until
then.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.settings import Settings, get_settings

log = logging.getLogger(__name__)
ZONES = ("raw", "curated", "quarantine", "features", "training", "mlflow", "answers", "events")
SKIPPED = {"events": ("broker",)}  # a zone's folders that are not Aisle's tables (NATS' store)
USER_KEY = "user_id"
QUARANTINED = "raw"  # the quarantine keeps each rejected row as JSON in this column
TABULAR = (".parquet", ".csv", ".json")  # .json: MLflow's logged tables ({"columns", "data"})


@dataclass
class Forgotten:
    user_hash: str
    files: dict[str, int] = field(default_factory=dict)  # path -> rows removed
    online: dict[str, int] = field(default_factory=dict)  # feature view -> entities removed

    def by_zone(self, data_dir: Path) -> dict[str, int]:
        out: dict[str, int] = {}
        for path, rows in self.files.items():
            zone = Path(path).relative_to(data_dir).parts[0]
            out[zone] = out.get(zone, 0) + rows
        return out


def forget_user(user_id: str, settings: Settings | None = None, who: str = "") -> Forgotten:
    """Remove every trace of `user_id`; returns what was removed (also in the audit log)."""
    from core.actor import actor

    settings = settings or get_settings()
    if not isinstance(user_id, str) or not user_id.strip():
        raise ValueError("a user id is a non-empty string")
    done = Forgotten(user_hash=hashlib.sha256(user_id.encode()).hexdigest())
    for path in user_files(settings):
        removed = _drop_rows(path, user_id)
        if removed:
            done.files[str(path)] = removed
    done.online = forget_online(settings, user_id)
    _audit(settings, done, who or actor())
    log.info(
        "forgot user sha256:%s: %d rows from %d files, online %s",
        done.user_hash[:12], sum(done.files.values()), len(done.files), done.online,
    )  # fmt: skip
    return done


def user_files(settings: Settings) -> list[Path]:
    """Every parquet or CSV file under the zones with a user_id column (or a quarantine's raw)."""
    found = []
    for zone in ZONES:
        root = settings.data_dir / zone
        if not root.is_dir():
            continue
        skipped = [root / name for name in SKIPPED.get(zone, ())]
        for path in sorted(root.rglob("*")):
            if any(path.is_relative_to(s) for s in skipped):
                continue
            if path.suffix in TABULAR and path.is_file() and _has_user(path):
                found.append(path)
    return found


def _has_user(path: Path) -> bool:
    try:
        if path.suffix == ".parquet":
            names = pq.read_schema(path).names
        elif path.suffix == ".json":
            names = _json_table(path)["columns"]
        else:
            names = list(pd.read_csv(path, nrows=0).columns)
    except Exception:  # not a table we can read: not ours to judge
        return False
    return USER_KEY in names or QUARANTINED in names


def read_user_table(path: Path) -> pd.DataFrame:
    """A file `user_files` found, as a frame (ids as text)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".json":
        table = _json_table(path)
        return pd.DataFrame(table["data"], columns=table["columns"])
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def user_ids(frame: pd.DataFrame) -> pd.Series:
    """Each row's user id: its user_id column, or the one inside a quarantined row's raw JSON (a
    dead-lettered array of events: its first event's). `holds_user` answers for one user."""
    if USER_KEY in frame.columns:
        return frame[USER_KEY].astype("string")
    return frame[QUARANTINED].map(_raw_user).astype("string")


def holds_user(frame: pd.DataFrame, user_id: str) -> pd.Series:
    """Whether each row holds the user: by its user_id column, or anywhere in its raw message."""
    keep, rewrites = _erasure(frame, user_id)
    holds = ~keep
    holds[list(rewrites)] = True
    return pd.Series(holds, index=frame.index)


def _raw_user(raw) -> str | None:
    try:
        message = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if isinstance(message, list):
        message = next((e for e in message if isinstance(e, dict)), {})
    value = message.get(USER_KEY) if isinstance(message, dict) else None
    return None if value is None else str(value)


_DROP = object()  # _erase_raw's verdict: the whole row goes


def _erasure(frame: pd.DataFrame, user_id: str) -> tuple[np.ndarray, dict[int, str]]:
    """The rows to keep, and the new raw text of kept rows whose message held the user among
    other users' events (by position)."""
    if USER_KEY in frame.columns:
        holds = frame[USER_KEY].astype("string") == user_id
        return ~holds.fillna(False).to_numpy(dtype=bool), {}
    keep = np.ones(len(frame), dtype=bool)
    rewrites: dict[int, str] = {}
    raw = frame[QUARANTINED].astype("string")
    candidates = raw.str.contains(user_id, regex=False).fillna(False).to_numpy(dtype=bool)
    for i in np.flatnonzero(candidates):  # only rows whose text holds the id at all
        verdict = _erase_raw(raw.iloc[i], user_id)
        if verdict is _DROP:
            keep[i] = False
        elif verdict is not None:
            rewrites[int(i)] = verdict
    return keep, rewrites


def _erase_raw(raw: str, user_id: str) -> object:
    """None: not the user's; _DROP: the row goes; a string: the message without the user's
    events (an array of events from several users)."""
    try:
        message = json.loads(raw)
    except ValueError:
        message = None
    if isinstance(message, dict) and USER_KEY in message:
        return _DROP if _is(message[USER_KEY], user_id) else None
    if isinstance(message, list) and message and all(isinstance(e, dict) for e in message):
        others = [e for e in message if not _is(e.get(USER_KEY), user_id)]
        if len(others) == len(message):
            return None
        return json.dumps(others, ensure_ascii=False) if others else _DROP
    # Not JSON (a dead letter may be any bytes), or JSON of another shape: the id in quotes.
    return _DROP if json.dumps(user_id) in raw or f'"{user_id}"' in raw else None


def _is(value: object, user_id: str) -> bool:
    return value is not None and str(value) == user_id


def _drop_rows(path: Path, user_id: str) -> int:
    from core.files import atomic_path

    if path.suffix == ".parquet":
        names = pq.read_schema(path).names
        column = USER_KEY if USER_KEY in names else QUARANTINED
        keep, rewrites = _erasure(pq.read_table(path, columns=[column]).to_pandas(), user_id)
        removed = int((~keep).sum()) + len(rewrites)
        if removed:
            table = pq.read_table(path)
            if rewrites:
                index = table.schema.get_field_index(QUARANTINED)
                values = table.column(index).to_pylist()
                for i, text in rewrites.items():
                    values[i] = text
                field = table.schema.field(index)
                table = table.set_column(index, field, pa.array(values, type=field.type))
            with atomic_path(path) as tmp:
                pq.write_table(table.filter(keep), tmp)
        return removed
    if path.suffix == ".json":
        table = _json_table(path)
        keep, rewrites = _erasure(read_user_table(path), user_id)
        removed = int((~keep).sum()) + len(rewrites)
        if removed:
            data = [list(row) for row in table["data"]]
            at = list(table["columns"]).index(QUARANTINED) if rewrites else -1
            for i, text in rewrites.items():
                data[i][at] = text
            kept = {**table, "data": [row for row, k in zip(data, keep, strict=True) if k]}
            with atomic_path(path) as tmp:
                Path(tmp).write_text(json.dumps(kept))
        return removed
    frame = read_user_table(path)
    keep, rewrites = _erasure(frame, user_id)
    removed = int((~keep).sum()) + len(rewrites)
    if removed:
        for i, text in rewrites.items():
            frame.iloc[i, frame.columns.get_loc(QUARANTINED)] = text
        with atomic_path(path) as tmp:
            frame[keep].to_csv(tmp, index=False)
    return removed


def _json_table(path: Path) -> dict:
    """An MLflow table artifact ({"columns": [...], "data": [[...], ...]}), else KeyError."""
    table = json.loads(path.read_text())
    if not isinstance(table, dict) or not {"columns", "data"} <= table.keys():
        raise KeyError("not a logged table")
    return table


def forget_online(settings: Settings, user_id: str) -> dict[str, int]:
    """Delete the user's entity rows of every user-keyed view from the online store."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from features.store import feature_store

    try:
        store = feature_store(settings)
        views = [v for v in store.list_feature_views() if USER_KEY in v.join_keys]
    except Exception as exc:  # no registry yet: nothing was materialised
        log.info("no online store to forget from (%s)", exc)
        return {}
    config = store.config
    key = EntityKey(join_keys=[USER_KEY], entity_values=[Value(string_val=user_id)])
    serialised = serialize_entity_key(key, config.entity_key_serialization_version)
    removed = {}
    for view in views:
        removed[view.name] = _delete_key(config, view, key, serialised)
    return removed


def _delete_key(config, view, key, serialised: bytes) -> int:
    kind = config.online_store.type
    if kind == "sqlite":
        import sqlite3

        from feast.infra.online_stores.sqlite import _table_id

        path = config.online_store.path
        if not Path(path).exists():
            return 0
        with sqlite3.connect(path) as con:
            table = _table_id(config.project, view)
            exists = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
            ).fetchone()
            if not exists:
                return 0
            cursor = con.execute(f'DELETE FROM "{table}" WHERE entity_key = ?', (serialised,))
            removed = int(cursor.rowcount > 0)
        if removed:  # deleted rows linger in SQLite's free pages until the file is rebuilt
            with sqlite3.connect(path) as con:
                con.execute("VACUUM")
        return removed
    if kind == "redis":
        from feast.infra.online_stores.redis import RedisOnlineStore, _redis_key

        client = RedisOnlineStore()._get_client(config.online_store)
        redis_key = _redis_key(config.project, key, config.entity_key_serialization_version)
        return int(client.delete(redis_key))
    raise ValueError(
        f"online store {kind!r}: Aisle's profiles use sqlite (local) or redis (production), "
        "and only those are erased"
    )


def _audit(settings: Settings, done: Forgotten, who: str) -> None:
    path = settings.data_dir / "forget" / "audit.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "who": who,
        "user_sha256": done.user_hash,
        "rows_removed_by_zone": done.by_zone(settings.data_dir),
        "files_rewritten": len(done.files),
        "online_entities_removed": done.online,
    }
    with path.open("a") as out:
        out.write(json.dumps(entry) + "\n")
