"""Aisle's feature store: one Feast repository, two profiles, the calls the rest of Aisle makes.

* `feature_store(settings)`: the Feast store of the configured profile (`AISLE_PROFILE`):
  *local* (DuckDB over the parquet feature tables, SQLite online store, file registry) or
  *production* (SQL registry in PostgreSQL, Redis online store). Its configuration
  (`repo_config`) and its definitions are built from `settings` alone: nothing here reads or
  writes the process environment.
* `apply(settings)`: registers the definitions when they changed (`feast apply`).
* `training_set(...)`: a point-in-time-correct frame for an entity frame with event times.
* With `AISLE_ENGINE=spark` either profile joins with Feast's Spark offline store and
  materialises with its Spark compute engine (`_engine_stores`), over the same feature tables.
* `materialize(...)`: loads one data interval of features into the online store (stateless).
* online lookup for serving lives in `features.online`.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from core.settings import Settings

from .labels import Labels, TrainingSetError, resolve
from .storage import Interval

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.infra.offline_stores.offline_store import RetrievalJob
    from feast.repo_config import RepoConfig

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).parent / "feature_repo"
PROFILE_FILES = {"local": "feature_store.yaml", "production": "feature_store.production.yaml"}
ENTITY_KEYS = {"user": "user_id", "item": "item_id", "store": "store_id"}


def _resolved(settings: Settings) -> Settings:
    """`settings` with an absolute data folder: Feast's registry, its online store and the
    definitions' sources must not depend on the working directory."""
    return settings.model_copy(update={"data_dir": settings.data_dir.resolve()})


def _check_profile(settings: Settings) -> None:
    if settings.profile == "production":
        missing = [n for n in ("feast_registry_url", "feast_redis") if not getattr(settings, n)]
        if missing:
            names = ", ".join(f"AISLE_{n.upper()}" for n in missing)
            raise ValueError(f"the production profile needs {names} in the environment")


def repo_config(settings: Settings) -> RepoConfig:
    """Feast's configuration of the settings' profile: its feature_store*.yaml with the
    ${AISLE_*} placeholders filled in from `settings` (as `settings.to_env()` names them),
    where Feast itself would expand them from the process environment."""
    import yaml
    from feast.repo_config import FeastConfigError, RepoConfig
    from pydantic import ValidationError

    _check_profile(settings)
    settings = _resolved(settings)
    (settings.data_dir / "feast").mkdir(parents=True, exist_ok=True)
    path = REPO_DIR / PROFILE_FILES[settings.profile]
    text = string.Template(path.read_text()).substitute(settings.to_env())
    try:
        config = RepoConfig(**{**yaml.safe_load(text), **_engine_stores(settings)})
    except ValidationError as invalid:
        raise FeastConfigError(invalid, str(path)) from None
    config.repo_path = REPO_DIR
    return config


def _engine_stores(settings: Settings) -> dict[str, Any]:
    """On Spark (AISLE_ENGINE=spark), Feast's Spark offline store joins the training sets and its
    Spark compute engine materialises, with the same session configuration as the feature
    tables (`features.engines.spark.spark_conf`: the master, the driver's memory, the Python the
    workers run). These replace the profile file's offline store, which stays the DuckDB one."""
    if settings.engine != "spark":
        return {}
    from .engines.spark import spark_conf

    conf = spark_conf(settings)
    return {
        "offline_store": {"type": "spark", "spark_conf": conf},
        "batch_engine": {"type": "spark.engine", "spark_conf": conf},
    }


def _start_engine(settings: Settings) -> None:
    """Start the settings' Spark session before Feast needs one: Feast reuses the active session,
    so it is built in the one place Aisle builds them (`features.engines.spark`)."""
    if settings.engine == "spark":
        from .engines.spark import spark_session

        _separate_spark_row_ids()
        spark_session(settings)


_UNSEPARATED_KEY = "CAST({{entity}} AS STRING),"
_SEPARATED_KEY = "CAST({{entity}} AS STRING), chr(31),"


def _separate_spark_row_ids() -> None:
    """Feast 0.67's Spark offline store names an entity row CONCAT(key, key, ..., time) with
    nothing between the keys, so item '1' in store '112' and item '11' in store '12' are one
    row to it, and each gets the other's features as well: four orange-juice weeks came back
    with 104 rows too many (tests/integration/test_spark_store.py). Its template gets a
    separator between them, the ASCII unit separator, a control character no id in Aisle
    holds; a Feast whose template changed fails here rather than joining wrongly."""
    from feast.infra.offline_stores.contrib.spark_offline_store import spark as feast_spark

    template = feast_spark.MULTIPLE_FEATURE_VIEW_POINT_IN_TIME_JOIN
    if _SEPARATED_KEY in template:
        return
    if _UNSEPARATED_KEY not in template:
        raise RuntimeError("Feast's Spark point-in-time join changed: re-check its row ids")
    separated = template.replace(_UNSEPARATED_KEY, _SEPARATED_KEY)
    feast_spark.MULTIPLE_FEATURE_VIEW_POINT_IN_TIME_JOIN = separated


def feature_store(settings: Settings) -> FeatureStore:
    """The Feast store of the settings' profile (`repo_config`)."""
    from feast import FeatureStore

    return FeatureStore(repo_path=str(REPO_DIR), config=repo_config(settings))


def definitions(settings: Settings) -> list[Any]:
    """The Feast definitions for `settings`: their sources read the settings' feature tables."""
    from .feature_repo.definitions import objects

    return objects(_resolved(settings))


FINGERPRINT_TAG = "aisle_definitions_sha256"


def fingerprint(objects: list[Any]) -> str:
    """A digest of the definitions' specs: equal exactly when `feast apply` would change nothing."""
    digest = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: (type(o).__name__, o.name)):
        spec = obj.to_proto().spec
        if "tags" in spec.DESCRIPTOR.fields_by_name and FINGERPRINT_TAG in spec.tags:
            del spec.tags[FINGERPRINT_TAG]  # the digest itself is not part of what it digests
        _clear_meta(spec)
        digest.update(type(obj).__name__.encode() + b"\0" + obj.name.encode() + b"\0")
        digest.update(spec.SerializeToString(deterministic=True))
    return digest.hexdigest()


def _clear_meta(message: Any) -> None:
    """Drop the creation times Feast stamps into nested specs (data sources carry them)."""
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None or descriptor.message_type.GetOptions().map_entry:
            continue
        if descriptor.name == "meta":
            message.ClearField("meta")
        elif isinstance(value, Sequence):  # a repeated field
            for item in value:
                _clear_meta(item)
        else:
            _clear_meta(value)


@dataclass(frozen=True)
class Applied:
    """What `apply` did: `changed` is False when the registry already held these definitions."""

    changed: bool
    fingerprint: str
    objects: list[str]
    removed: list[str]


def apply(settings: Settings, force: bool = False) -> Applied:
    """`feast apply` when the definitions changed (or `force`); idempotent.

    The definitions' fingerprint is kept as a tag on each feature service in the registry itself,
    so every profile (file registry or PostgreSQL) and every machine agree on what is applied.
    Views and services the definitions no longer hold are removed from the registry.
    """
    from feast import FeatureService

    objects = definitions(settings)
    digest = fingerprint(objects)
    store = feature_store(settings)
    names = [o.name for o in objects]
    if not force and _registered_fingerprint(store) == digest:
        return Applied(False, digest, names, [])
    stale = [
        o
        for o in [*store.list_feature_views(), *store.list_feature_services()]
        if o.name not in names
    ]
    for obj in objects:
        if isinstance(obj, FeatureService):
            obj.tags[FINGERPRINT_TAG] = digest
    store.apply(objects, objects_to_delete=stale, partial=False)
    return Applied(True, digest, names, [o.name for o in stale])


def applied_fingerprint(settings: Settings) -> str | None:
    """The fingerprint of the definitions in the registry now (a model's feature lineage)."""
    return _registered_fingerprint(feature_store(settings))


def _registered_fingerprint(store: FeatureStore) -> str | None:
    services = store.list_feature_services()
    tags = {s.tags.get(FINGERPRINT_TAG) for s in services}
    return tags.pop() if len(tags) == 1 else None


def training_set(
    settings: Settings,
    labels: pd.DataFrame | Labels,
    service: str = "recommender_v1",
    unknown: Literal["error", "allow"] = "error",
) -> pd.DataFrame:
    """Point-in-time join of a feature service onto `labels` (`features.labels`: a frame, or a
    query the engine runs).

    The labels hold the entity keys the service needs (e.g. user_id, item_id) and
    `event_timestamp`: each row gets the features as they were known at that moment (computed
    from data before it), or nulls when nothing was known yet (a user's first visit).

    An id that appears in none of the service's feature tables is almost always a mistake (a
    wrong data set, a typo) and is an error; `unknown="allow"` lets such ids through with nulls.
    """
    joined = training_job(settings, labels, service, unknown).to_df()
    # Spark hands the times back as UTC wall times in nanoseconds without a zone, DuckDB as UTC
    # microseconds (both engines' precision): the same frame from either.
    times = pd.to_datetime(joined["event_timestamp"], utc=True)
    joined["event_timestamp"] = times.dt.as_unit("us")
    return joined


def training_job(
    settings: Settings,
    labels: pd.DataFrame | Labels,
    service: str = "recommender_v1",
    unknown: Literal["error", "allow"] = "error",
) -> RetrievalJob:
    """The checked, not yet run join of `training_set`: on Spark, `.to_spark_df()` leaves its
    rows in Spark (`training.training_sets.write_joined_training_set` writes them from there),
    and labels given as a query never leave it either."""
    store = feature_store(settings)
    keys = _service_keys(store, service)
    entity_df = resolve(settings, labels, keys)  # a bad frame is an error before Spark starts
    _start_engine(settings)
    if unknown == "error":
        _check_known_ids(settings, store, service, entity_df)
    return store.get_historical_features(
        entity_df=entity_df, features=store.get_feature_service(service)
    )


def _check_known_ids(settings: Settings, store: FeatureStore, service: str, entity_df: Any) -> None:
    checked: set[str] = set()
    for projection in store.get_feature_service(service).feature_view_projections:
        view = store.get_feature_view(projection.name)
        for key in [k for k in view.join_keys if k not in checked]:
            checked.add(key)
            files = glob.glob(view.batch_source.path)
            count, examples = _unknown_ids(settings, files, key, entity_df)
            if count:
                raise TrainingSetError(
                    f"{count} {key} value(s) appear in no {view.name} feature table, "
                    f"e.g. {examples[:5]}; check the data set, or pass unknown='allow' to get "
                    "nulls for them"
                )


def _unknown_ids(
    settings: Settings, files: list[str], key: str, entity_df: Any
) -> tuple[int, list[str]]:
    """How many of the labels' `key` values no feature file holds, and the first few of them.
    On Spark the files are read and compared there (an anti-join), so only those few come back
    here; labels already in Spark (a `Labels` query) are compared where they are."""
    if settings.engine == "spark":
        from .engines.spark import spark_session

        spark = spark_session(settings)
        if isinstance(entity_df, pd.DataFrame):
            wanted = spark.createDataFrame([(i,) for i in sorted(set(entity_df[key]))], [key])
        else:
            wanted = entity_df.select(key)
        if not files:
            missing = wanted.distinct()
        else:
            known = spark.read.parquet(*files).select(key)
            missing = wanted.join(known, on=key, how="left_anti").distinct()
        return missing.count(), [r[0] for r in missing.orderBy(key).limit(5).collect()]
    import duckdb

    ids = sorted(set(entity_df[key]))
    if not files:
        return len(ids), ids
    sql = f'SELECT DISTINCT "{key}" FROM read_parquet($files)'
    with duckdb.connect() as con:
        known = {r[0] for r in con.execute(sql, {"files": files}).fetchall()}
    missing = [i for i in ids if i not in known]
    return len(missing), missing


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


def materialize(settings: Settings, interval: Interval, flow: str | None = None) -> list[str]:
    """Load the feature rows stamped within [start, end] into the online store; safe to repeat.

    `flow` limits it to the views fed by that flow (their `flow` tag): the sales weeks need not be
    scanned when an interactions interval arrives. A view with no feature table yet is skipped
    (and logged). Returns the views materialised.
    """
    store = feature_store(settings)
    views = []
    for view in store.list_feature_views():
        if flow is not None and view.tags.get("flow") != flow:
            continue
        if not glob.glob(view.batch_source.path):
            log.info(
                "materialize: %s has no feature tables yet (%s)", view.name, view.batch_source.path
            )
            continue
        views.append(view.name)
    if views:
        _start_engine(settings)
        store.materialize(interval.start, interval.end, feature_views=views)
    return views
