"""Aisle's Feast definitions: entities, feature views and the versioned feature services.

Each feature view reads the feature tables that `features.feature_tables` (recommender: one
partition per day, `event_timestamp` = the end of that day) and `features.pricing_tables`
(pricing: one per sales week) write, and its fields are generated from those tables' Arrow
schemas, so the definitions cannot drift from the data. Every source is a FileSource, or a
SparkSource over the same files when AISLE_ENGINE=spark (`batch_source`). The recommender's
30-day views have a TTL of one day: a row is a summary of the 30 days up to its timestamp, and a
day without a row means no activity in that window, not "the last summary we had";
`user_history_fv` carries every user forward each day. `user_session_fv` is live: the event
stream's consumer pushes it (features.stream.session) within a second of a shopper's click, and
nothing materialises it. The services: `recommender_v1` (a user and a candidate item),
`recommender_history_v1` (a user's history alone) and `pricing_v1`.

`objects(settings)` builds them for one configuration (the data folder the sources read, the
data sets they belong to); `features.store` passes its settings in, nothing is read from the
environment.
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_source import DataSource
from feast.types import Array, Bool, FeastType, Float64, Int64, String, UnixTimestamp

from core.settings import Settings
from features.feature_tables import (
    ITEM_POPULARITY_SCHEMA,
    USER_ACTIVITY_SCHEMA,
    USER_HISTORY_SCHEMA,
    feature_dir,
)
from features.pricing_tables import (
    DEMAND_HISTORY_SCHEMA,
    ITEM_PRICE_SCHEMA,
    STORE_ATTRIBUTES,
    latest_store_attributes_schema,
)
from features.sources import resolve

_ARROW_TO_FEAST: dict[pa.DataType, FeastType] = {
    pa.string(): String,
    pa.int64(): Int64,
    pa.float64(): Float64,
    pa.bool_(): Bool,
    pa.list_(pa.string()): Array(String),
    pa.list_(pa.float64()): Array(Float64),
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


def batch_source(
    settings: Settings, name: str, path: str, field_mapping: dict[str, str] | None = None
) -> DataSource:
    """The source Feast's offline store of the settings' engine reads: a FileSource for DuckDB,
    a SparkSource for Spark (Feast's Spark offline store and compute engine accept nothing
    else). Both read the same glob of parquet files; the source is part of the definitions, so
    switching the engine changes their fingerprint and `apply` registers the Spark sources."""
    if settings.engine == "spark":
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
            SparkSource,
        )

        return SparkSource(
            name=name,
            path=path,
            file_format="parquet",
            timestamp_field="event_timestamp",
            field_mapping=field_mapping,
        )
    return FileSource(
        name=name, path=path, timestamp_field="event_timestamp", field_mapping=field_mapping
    )


def daily_source(
    settings: Settings, dataset: str, view: str, schema: pa.Schema, *keys: str, prefix: str = ""
) -> DataSource:
    """The source over a feature table's daily partitions (Feast wants a glob of files)."""
    mapping = {c.name: prefix + c.name for c in feature_columns(schema, *keys)} if prefix else {}
    path = str(feature_dir(settings, dataset, view) / "date=*" / "*.parquet")
    return batch_source(settings, f"{view}_source", path, mapping)


user = Entity(
    name="user", join_keys=["user_id"], value_type=ValueType.STRING, description="a shopper"
)
item = Entity(
    name="item", join_keys=["item_id"], value_type=ValueType.STRING, description="an item"
)
store = Entity(
    name="store", join_keys=["store_id"], value_type=ValueType.STRING, description="a store"
)


def objects(settings: Settings) -> list[Entity | FeatureView | FeatureService]:
    """Every definition for `settings`: the entities, then each flow's views and services."""
    return [user, item, store, *recommender_objects(settings), *pricing_objects(settings)]


def recommender_objects(settings: Settings) -> list[FeatureView | FeatureService]:
    """The interactions flow's views, over the feature tables of the settings' source."""
    dataset = resolve(settings.interactions_source).dataset
    user_activity_fv = FeatureView(
        name="user_activity_fv",
        entities=[user],
        ttl=timedelta(days=1),
        schema=fields_of(USER_ACTIVITY_SCHEMA, "user_id"),
        source=daily_source(settings, dataset, "user_activity", USER_ACTIVITY_SCHEMA, "user_id"),
        online=True,
        tags={"flow": "interactions", "window": "30d"},
    )

    # Item features are named item_* (events_7d of an item is not events_7d of a user: one
    # feature service holds both, and Feast wants each name once).
    item_popularity_fv = FeatureView(
        name="item_popularity_fv",
        entities=[item],
        ttl=timedelta(days=1),
        schema=fields_of(ITEM_POPULARITY_SCHEMA, "item_id", prefix="item_"),
        source=daily_source(
            settings, dataset, "item_popularity", ITEM_POPULARITY_SCHEMA, "item_id", prefix="item_"
        ),
        online=True,
        tags={"flow": "interactions", "window": "30d"},
    )

    # A user's whole history, as of the end of each day (features.history_tables). Every daily
    # partition carries every user seen so far, so an inactive user keeps their history without
    # a long TTL; the TTL only bridges days whose partition is missing (a week: a late build
    # serves the history as of before it, not nulls). Feast's point-in-time join pairs a label
    # with every row inside the TTL before picking the latest, so 3650 days made the 100,000
    # MovieLens labels take 21 s instead of 5.6 s (benchmarks/training_set.py's input, 2 CPUs).
    user_history_fv = FeatureView(
        name="user_history_fv",
        entities=[user],
        ttl=timedelta(days=7),
        schema=fields_of(USER_HISTORY_SCHEMA, "user_id"),
        source=daily_source(settings, dataset, "user_history", USER_HISTORY_SCHEMA, "user_id"),
        online=True,
        tags={"flow": "interactions", "window": "all"},
    )

    recommender_v1 = FeatureService(
        name="recommender_v1",
        features=[user_activity_fv, item_popularity_fv, user_history_fv],
        description="What the recommender sees of a user and a candidate item.",
    )

    # Keyed by user alone: the recommender's training sets and its online scoring ask for a
    # user's history, with no candidate item to join (training.recommender.dataset).
    recommender_history_v1 = FeatureService(
        name="recommender_history_v1",
        features=[user_history_fv],
        description="Every item a user touched before the moment asked about, most recent first.",
    )
    views = [user_activity_fv, item_popularity_fv, user_history_fv, user_session_view(settings)]
    return [*views, recommender_v1, recommender_history_v1]


SESSION_VIEW = "user_session_fv"
SESSION_PUSH = "user_session_push"


def user_session_view(settings: Settings) -> FeatureView:
    """A shopper's live session, pushed by the event stream's consumer (features.stream.session
    holds its fields' meaning). Its batch source is where an offline copy would go; nothing
    writes it, and materialisation skips a view without files. It is the engine's kind of source
    like every other, so an offline read of the view (once a copy exists) works on either engine:
    Feast's Spark offline store and compute engine read SparkSources alone."""
    push = PushSource(
        name=SESSION_PUSH,
        batch_source=batch_source(
            settings,
            "user_session_source",
            str(settings.events_dir.resolve() / "session" / "*.parquet"),
        ),
    )
    return FeatureView(
        name=SESSION_VIEW,
        entities=[user],
        ttl=timedelta(days=30),
        schema=[
            Field(name="recent_item_ids", dtype=Array(String)),
            Field(name="session_item_ids", dtype=Array(String)),
            Field(name="session_started_at", dtype=UnixTimestamp),
            Field(name="last_event_at", dtype=UnixTimestamp),
            Field(name="session_events", dtype=Int64),
            Field(name="events_30m", dtype=Int64),
            Field(name="event_ids", dtype=Array(String)),
            Field(name="event_item_ids", dtype=Array(String)),
            Field(name="event_times_ms", dtype=Array(Int64)),
        ],
        source=push,
        online=True,
        tags={"flow": "stream", "window": "session"},
    )


# Pricing: weekly views keyed by item and store (DESIGN: item_price_fv). Shelf prices are posted
# when a week starts; a week's units are known when it ends (features.pricing_tables). Rows are
# stamped at week boundaries; a TTL under a week means a week without a row reads as null, never
# as the week before. (Whole days: Feast's DuckDB store cannot express days plus seconds.)
ONE_WEEK = timedelta(days=6)


def pricing_objects(settings: Settings) -> list[FeatureView | FeatureService]:
    """The sales flow's views, over the feature tables of the settings' source."""
    dataset = resolve(settings.sales_source).dataset
    item_price_fv = FeatureView(
        name="item_price_fv",
        entities=[item, store],
        ttl=ONE_WEEK,
        schema=fields_of(ITEM_PRICE_SCHEMA, "item_id", "store_id"),
        source=daily_source(
            settings, dataset, "item_price", ITEM_PRICE_SCHEMA, "item_id", "store_id"
        ),
        online=True,
        tags={"flow": "sales", "grain": "week"},
    )
    demand_history_fv = FeatureView(
        name="demand_history_fv",
        entities=[item, store],
        ttl=ONE_WEEK,
        schema=fields_of(DEMAND_HISTORY_SCHEMA, "item_id", "store_id"),
        source=daily_source(
            settings, dataset, "demand_history", DEMAND_HISTORY_SCHEMA, "item_id", "store_id"
        ),
        online=True,
        tags={"flow": "sales", "grain": "week", "window": "4w"},
    )
    views = [item_price_fv, demand_history_fv, *store_attributes_views(settings, dataset)]
    pricing_v1 = FeatureService(
        name="pricing_v1",
        features=views,
        description="What the pricing model sees of an item in a store: its shelf and its demand.",
    )
    return [*views, pricing_v1]


def store_attributes_views(settings: Settings, dataset: str) -> list[FeatureView]:
    """Store attributes are whatever columns the stores table brings: the fields come from the
    newest feature table's schema, so the view appears once a stores snapshot has been ingested
    (and the features DAG re-applies the definitions when that changes them). Named store_* in
    services. None before then."""
    schema = latest_store_attributes_schema(settings, dataset)
    if schema is None or not feature_columns(schema, "store_id"):
        return []
    store_attributes_fv = FeatureView(
        name="store_attributes_fv",
        entities=[store],
        ttl=timedelta(days=3650),  # attributes hold until the next snapshot replaces them
        schema=fields_of(schema, "store_id", prefix="store_"),
        source=daily_source(
            settings, dataset, STORE_ATTRIBUTES, schema, "store_id", prefix="store_"
        ),
        online=True,
        tags={"flow": "sales", "grain": "snapshot"},
    )
    return [store_attributes_fv]
