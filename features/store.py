"""Aisle's feature store: one Feast repository, two profiles, the calls the rest of Aisle makes.

* `feature_store(settings)`: the Feast store of the configured profile (`AISLE_PROFILE`):
  *local* (parquet offline store, SQLite online store, file registry) or *production* (SQL
  registry in PostgreSQL, Redis online store). `apply(settings)` registers the definitions.
* `training_set(...)`: a point-in-time-correct frame for an entity frame with event times.
* `materialize(...)`: loads one data interval of features into the online store (stateless).
* `online_features(...)`: features for one or many users at serving time, with an explicit
  "never seen" flag per row and a typed `FeaturesUnavailable` when the store cannot answer.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from aisle.settings import Settings

from .storage import Interval

if TYPE_CHECKING:
    from feast import FeatureStore

REPO_DIR = Path(__file__).parent / "feature_repo"
PROFILE_FILES = {"local": "feature_store.yaml", "production": "feature_store.production.yaml"}
ENTITY_KEYS = {"user": "user_id", "item": "item_id", "store": "store_id"}


class TrainingSetError(ValueError):
    """An entity frame the training-set builder cannot use; the message says what to fix."""


class FeaturesUnavailable(RuntimeError):
    """The online store did not answer; callers fall back (e.g. to popularity)."""


def _export(settings: Settings) -> None:
    """The values feature_store*.yaml and the definitions read from the environment."""
    os.environ.update(settings.to_env())
    os.environ["AISLE_DATA_DIR"] = str(settings.data_dir.resolve())
    (settings.data_dir / "feast").mkdir(parents=True, exist_ok=True)
    if settings.profile == "production":
        missing = [n for n in ("feast_registry_url", "feast_redis") if not getattr(settings, n)]
        if missing:
            names = ", ".join(f"AISLE_{n.upper()}" for n in missing)
            raise ValueError(f"the production profile needs {names} in the environment")


def feature_store(settings: Settings) -> FeatureStore:
    from feast import FeatureStore

    _export(settings)
    return FeatureStore(
        repo_path=str(REPO_DIR), fs_yaml_file=REPO_DIR / PROFILE_FILES[settings.profile]
    )


def definitions(settings: Settings) -> Any:
    """The definitions module, loaded for `settings` (its sources point at their data)."""
    _export(settings)
    module = importlib.import_module("features.feature_repo.definitions")
    return importlib.reload(module)


def apply(settings: Settings) -> list[str]:
    """`feast apply`: register the definitions (idempotent). Returns the objects' names."""
    objects = definitions(settings).OBJECTS
    feature_store(settings).apply(objects)
    return [o.name for o in objects]


def training_set(
    settings: Settings, entity_df: pd.DataFrame, service: str = "recommender_v1"
) -> pd.DataFrame:
    """Point-in-time join of a feature service onto `entity_df`.

    `entity_df` holds the entity keys the service needs (e.g. user_id, item_id) and
    `event_timestamp`: each row gets the features as they were known before that moment.
    """
    store = feature_store(settings)
    keys = _service_keys(store, service)
    _check_entity_frame(entity_df, keys)
    frame = entity_df.copy()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    job = store.get_historical_features(
        entity_df=frame, features=store.get_feature_service(service)
    )
    return job.to_df()


def _service_keys(store: FeatureStore, service: str) -> list[str]:
    try:
        feature_service = store.get_feature_service(service)
    except Exception as exc:  # feast raises its own not-found error types
        raise TrainingSetError(
            f"no feature service {service!r}; run `aisle features apply`"
        ) from exc
    keys: list[str] = []
    for projection in feature_service.feature_view_projections:
        view = store.get_feature_view(projection.name)
        keys += [k for k in view.join_keys if k not in keys]
    return keys


def _check_entity_frame(entity_df: pd.DataFrame, keys: list[str]) -> None:
    missing = [c for c in [*keys, "event_timestamp"] if c not in entity_df]
    if missing:
        raise TrainingSetError(f"the entity frame lacks column(s) {', '.join(missing)}")
    if entity_df.empty:
        raise TrainingSetError("the entity frame is empty")
    times = pd.to_datetime(entity_df["event_timestamp"], utc=True, errors="coerce")
    if times.isna().any():
        bad = entity_df.index[times.isna()][:5].tolist()
        raise TrainingSetError(f"event_timestamp is missing or not a time in rows {bad}")
    for key in keys:
        if not all(isinstance(v, str) for v in entity_df[key]):
            raise TrainingSetError(f"{key} must hold strings (ids are strings in Aisle)")
    duplicated = entity_df.duplicated(subset=[*keys, "event_timestamp"])
    if duplicated.any():
        rows = entity_df.index[duplicated][:5].tolist()
        raise TrainingSetError(f"duplicate entity rows (same keys and time) at {rows}")


def materialize(settings: Settings, interval: Interval) -> list[str]:
    """Load the features of [start, end) into the online store; safe to repeat."""
    store = feature_store(settings)
    store.materialize(interval.start, interval.end)
    return [view.name for view in store.list_feature_views()]


@dataclass
class OnlineFeatures:
    """Features per requested entity, in request order; `known[i]` is False for an entity
    the store has never seen (its features are None), which is an answer, not an error."""

    entity: str
    ids: list[str]
    features: dict[str, list[Any]] = field(default_factory=dict)
    known: list[bool] = field(default_factory=list)

    def row(self, i: int) -> dict[str, Any]:
        return {name: values[i] for name, values in self.features.items()}


def online_features(
    settings: Settings, view: str, ids: list[str], store: FeatureStore | None = None
) -> OnlineFeatures:
    """Online features of one feature view for a batch of entity ids (one call)."""
    store = store or feature_store(settings)
    feature_view = store.get_feature_view(view)
    (key,) = feature_view.join_keys
    refs = [f"{view}:{f.name}" for f in feature_view.features]
    try:
        result = store.get_online_features(features=refs, entity_rows=[{key: i} for i in ids])
        values = result.to_dict()
    except Exception as exc:  # the store's client errors differ per backend
        raise FeaturesUnavailable(f"online store did not answer for {view}: {exc}") from exc
    features = {f.name: values[f.name] for f in feature_view.features}
    known = [any(v[i] is not None for v in features.values()) for i in range(len(ids))]
    return OnlineFeatures(entity=key, ids=list(ids), features=features, known=known)
