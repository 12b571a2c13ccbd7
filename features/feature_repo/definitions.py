"""Aisle's Feast definitions: entities, feature views and the versioned feature services.

Each feature view reads the daily feature tables that `features.feature_tables` writes (one
partition per day, `event_timestamp` = the end of that day), and its fields are generated from
those tables' Arrow schemas, so the definitions cannot drift from the data. A view's TTL is one
day: a row is a summary of the 30 days up to its timestamp, and a day without a row means no
activity in that window, not "the last summary we had".
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Bool, FeastType, Float64, Int64, String, UnixTimestamp

from aisle.settings import get_settings
from features.feature_tables import ITEM_POPULARITY_SCHEMA, USER_ACTIVITY_SCHEMA, feature_dir
from features.sources import resolve

_ARROW_TO_FEAST: dict[pa.DataType, FeastType] = {
    pa.string(): String,
    pa.int64(): Int64,
    pa.float64(): Float64,
    pa.bool_(): Bool,
    pa.list_(pa.string()): Array(String),
}


def feature_columns(schema: pa.Schema, *keys: str) -> list[pa.Field]:
    return [c for c in schema if c.name not in (*keys, "event_timestamp")]


def fields_of(schema: pa.Schema, *keys: str, prefix: str = "") -> list[Field]:
    """Feast fields for every column of a feature table but its keys and timestamp."""
    return [
        Field(
            name=prefix + column.name,
            dtype=UnixTimestamp
            if pa.types.is_timestamp(column.type)
            else _ARROW_TO_FEAST[column.type],
        )
        for column in feature_columns(schema, *keys)
    ]


_settings = get_settings()
INTERACTIONS_DATASET = resolve(_settings.interactions_source).dataset

user = Entity(
    name="user", join_keys=["user_id"], value_type=ValueType.STRING, description="a shopper"
)
item = Entity(
    name="item", join_keys=["item_id"], value_type=ValueType.STRING, description="an item"
)
store = Entity(
    name="store", join_keys=["store_id"], value_type=ValueType.STRING, description="a store"
)

user_activity_source = FileSource(
    name="user_activity_source",
    path=str(
        feature_dir(_settings, INTERACTIONS_DATASET, "user_activity") / "date=*" / "*.parquet"
    ),
    timestamp_field="event_timestamp",
)
user_activity_fv = FeatureView(
    name="user_activity_fv",
    entities=[user],
    ttl=timedelta(days=1),
    schema=fields_of(USER_ACTIVITY_SCHEMA, "user_id"),
    source=user_activity_source,
    online=True,
    tags={"team": "recommender", "window": "30d"},
)

# Item features are named item_* (events_7d of an item is not events_7d of a user: one
# feature service holds both, and Feast wants each name once).
item_popularity_source = FileSource(
    name="item_popularity_source",
    path=str(
        feature_dir(_settings, INTERACTIONS_DATASET, "item_popularity") / "date=*" / "*.parquet"
    ),
    timestamp_field="event_timestamp",
    field_mapping={
        c.name: f"item_{c.name}" for c in feature_columns(ITEM_POPULARITY_SCHEMA, "item_id")
    },
)
item_popularity_fv = FeatureView(
    name="item_popularity_fv",
    entities=[item],
    ttl=timedelta(days=1),
    schema=fields_of(ITEM_POPULARITY_SCHEMA, "item_id", prefix="item_"),
    source=item_popularity_source,
    online=True,
    tags={"team": "recommender", "window": "30d"},
)

recommender_v1 = FeatureService(
    name="recommender_v1",
    features=[user_activity_fv, item_popularity_fv],
    description="What the recommender sees of a user and a candidate item.",
)

OBJECTS = [user, item, store, user_activity_fv, item_popularity_fv, recommender_v1]
