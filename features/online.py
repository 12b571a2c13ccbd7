"""Online feature lookup for serving: one feature view, a batch of entities, one round trip.

A service builds an `OnlineLookup` once at start (the view, its keys and the store's client are
resolved then) and calls it per request. It reads through the Feast store's own online store
(`OnlineStore.online_read`: SQLite locally, Redis in production) and decodes with Feast's type
map, without the per-call registry and request planning of `FeatureStore.get_online_features`,
which cost several milliseconds per call (benchmarks/online_features.py); a test checks both give
the same values.

Entities never seen are an answer (`known=False`, features None), not an error; a store that does
not answer raises `FeaturesUnavailable`, for the caller to fall back on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.settings import Settings

from .store import feature_store

if TYPE_CHECKING:
    from feast import FeatureStore

EntityRow = dict[str, str]


class FeaturesUnavailable(RuntimeError):
    """The online store did not answer; callers fall back (e.g. to popularity)."""


@dataclass
class OnlineFeatures:
    """Features per requested entity, in request order.

    `known[i]` is False for an entity the store has never seen (its features are None);
    `as_of[i]` is when its row became known (None when unknown), so a caller can judge staleness
    against the view's TTL.
    """

    keys: list[str]
    entities: list[EntityRow]
    features: dict[str, list[Any]] = field(default_factory=dict)
    known: list[bool] = field(default_factory=list)
    as_of: list[datetime | None] = field(default_factory=list)

    def row(self, i: int) -> dict[str, Any]:
        return {name: values[i] for name, values in self.features.items()}


class OnlineLookup:
    """Online features of one feature view; resolve once, call per request."""

    def __init__(self, settings: Settings, view: str, store: FeatureStore | None = None) -> None:
        self.store = store or feature_store(settings)
        self.view = self.store.get_feature_view(view)
        self.keys = list(self.view.join_keys)
        self.names = [f.name for f in self.view.features]
        self._online_store = self.store._get_provider().online_store

    def __call__(self, entities: list[str] | list[EntityRow]) -> OnlineFeatures:
        """`entities` are ids when the view has one key (users: `["u1", "u2"]`), else one dict
        of keys per entity (`[{"item_id": "1", "store_id": "2"}]`)."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        rows = [self._row(e) for e in entities]
        entity_keys = [
            EntityKey(
                join_keys=self.keys, entity_values=[Value(string_val=row[k]) for k in self.keys]
            )
            for row in rows
        ]
        try:
            # a copy: the Redis store appends its timestamp field to the list it is given
            read = self._online_store.online_read(
                self.store.config, self.view, entity_keys, list(self.names)
            )
        except Exception as exc:  # the store's client errors differ per backend
            raise FeaturesUnavailable(
                f"online store did not answer for {self.view.name}: {exc}"
            ) from exc
        features: dict[str, list[Any]] = {name: [] for name in self.names}
        known, as_of = [], []
        for stamp, values in read:
            # SQLite answers (None, None) for a key it lacks; Redis a dict of empty values
            present = {n: v for n, v in (values or {}).items() if v.WhichOneof("val")}
            known.append(bool(present))
            as_of.append(_as_utc(stamp) if present else None)
            for name in self.names:
                features[name].append(_python(present[name]) if name in present else None)
        return OnlineFeatures(self.keys, rows, features, known, as_of)

    def _row(self, entity: str | EntityRow) -> EntityRow:
        if isinstance(entity, dict) and sorted(entity) == sorted(self.keys):
            return entity
        if isinstance(entity, str) and len(self.keys) == 1:
            return {self.keys[0]: entity}
        raise ValueError(f"{self.view.name} is keyed by {self.keys}; got the entity {entity!r}")


def online_features(
    settings: Settings,
    view: str,
    entities: list[str] | list[EntityRow],
    store: FeatureStore | None = None,
) -> OnlineFeatures:
    """One-off lookup (resolves the view each time; services keep an `OnlineLookup`)."""
    return OnlineLookup(settings, view, store)(entities)


def _python(value: Any) -> Any:
    from feast.type_map import feast_value_type_to_python_type

    return feast_value_type_to_python_type(value)


def _as_utc(stamp: datetime | None) -> datetime | None:
    if stamp is None:
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
