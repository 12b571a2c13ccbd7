"""Feast on Spark (AISLE_ENGINE=spark): its Spark offline store joins the same training sets as
the DuckDB store, and its Spark compute engine materialises the same online values.

The feature tables are built once, on DuckDB, from a week of real MovieLens interactions and four
orange-juice weeks; each engine's Feast repository reads those same files (a data folder of its
own, for its own registry and online store, whose `features` folder is the shared one). The
Spark side is one local session for the whole worker (two cores).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features import online, store
from features.feature_tables import build_feature_tables
from features.ingest import ingest
from features.pricing_tables import build_pricing_tables
from features.storage import Interval

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ML_WEEK = Interval.parse("1997-10-01", "1997-10-08")
OJ_WEEKS = Interval.parse("1990-06-14", "1990-07-12")  # four Thursdays of Dominick's


@pytest.fixture(scope="module")
def engines(prepared_settings, tmp_path_factory) -> dict[str, object]:
    """engine -> settings over the same feature tables, applied to that engine's Feast."""
    root = tmp_path_factory.mktemp("spark_store")
    built = prepared_settings.model_copy(
        update={
            "data_dir": root / "duckdb",
            "engine": "duckdb",
            "interactions_source": "movielens",
            "sales_source": "orange_juice",
        }
    )
    built.data_dir.mkdir()
    (built.data_dir / "sources").symlink_to(prepared_settings.sources_dir.resolve())
    ingest("interactions", ML_WEEK.start, ML_WEEK.end, built)
    build_feature_tables(built, "movielens", ML_WEEK)
    ingest("sales", OJ_WEEKS.start, OJ_WEEKS.end, built)
    build_pricing_tables(built, "orange_juice", OJ_WEEKS)

    spark = built.model_copy(update={"data_dir": root / "spark", "engine": "spark"}, deep=True)
    spark.spark.master = "local[2]"
    spark.spark.shuffle_partitions = 4
    spark.data_dir.mkdir()
    (spark.data_dir / "features").symlink_to((built.data_dir / "features").resolve())
    (spark.data_dir / "curated").symlink_to(built.curated_dir.resolve())
    by_engine = {"duckdb": built, "spark": spark}
    for settings in by_engine.values():
        assert store.apply(settings).changed
    return by_engine


def _curated(settings, dataset: str, table: str) -> pd.DataFrame:
    parts = sorted((settings.curated_dir / dataset / table).glob("date=*/*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values([*keys, "event_timestamp"], ignore_index=True)


def _plain(value):
    """A list-valued cell as a list (DuckDB and Spark hand back lists or arrays), else as is."""
    if isinstance(value, np.ndarray | list):
        return [_plain(v) for v in value]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def assert_same_frame(spark: pd.DataFrame, duck: pd.DataFrame, keys: list[str]) -> None:
    """Same columns in the same order, same dtypes, same rows; floats to 1e-12 (Java's log and
    glibc's differ in the last bit)."""
    assert list(spark.columns) == list(duck.columns)
    assert spark.dtypes.to_dict() == duck.dtypes.to_dict()
    spark, duck = _sorted(spark, keys), _sorted(duck, keys)
    assert len(spark) == len(duck)
    for column in duck.columns:
        if pd.api.types.is_float_dtype(duck[column]):
            np.testing.assert_allclose(spark[column], duck[column], rtol=1e-12, err_msg=column)
        else:
            got, want = spark[column].map(_plain).tolist(), duck[column].map(_plain).tolist()
            assert got == want, column


def test_the_recommender_training_set_is_the_same_on_spark(engines):
    events = _curated(engines["duckdb"], "movielens", "interactions")
    rng = np.random.default_rng(7)
    labels = events.sample(300, random_state=7)
    entity_df = pd.DataFrame(
        {
            "user_id": labels.user_id.to_numpy(),
            "item_id": labels.item_id.to_numpy(),
            # a moment in the day after the event: the features of the days before it
            "event_timestamp": labels.timestamp.dt.floor("D")
            + pd.to_timedelta(rng.integers(86_400, 2 * 86_400, len(labels)), unit="s"),
        }
    ).drop_duplicates(["user_id", "item_id", "event_timestamp"])
    frames = {e: store.training_set(s, entity_df) for e, s in engines.items()}
    assert frames["duckdb"].events_30d.notna().sum() > 100  # the join found features
    assert frames["duckdb"].history_item_ids.notna().sum() > 100
    assert_same_frame(frames["spark"], frames["duckdb"], ["user_id", "item_id"])


def test_the_pricing_training_set_is_the_same_on_spark(engines):
    sales = _curated(engines["duckdb"], "orange_juice", "sales")
    entity_df = pd.DataFrame(
        {
            "item_id": sales.item_id,
            "store_id": sales.store_id,
            "event_timestamp": pd.to_datetime(sales.week_start).dt.tz_localize("UTC"),
        }
    )
    frames = {
        e: store.training_set(s, entity_df, "pricing_v1", unknown="allow")
        for e, s in engines.items()
    }
    assert frames["duckdb"].price.notna().sum() > 1000
    assert frames["duckdb"].units_lag1.notna().sum() > 500  # weeks after the first have demand
    assert_same_frame(frames["spark"], frames["duckdb"], ["item_id", "store_id"])


def test_unknown_ids_are_found_on_spark(engines):
    entity_df = pd.DataFrame(
        {"user_id": ["nobody", "1"], "item_id": ["1", "1"], "event_timestamp": ["1997-10-05"] * 2}
    )
    with pytest.raises(store.TrainingSetError, match=r"1 user_id value\(s\) .*'nobody'"):
        store.training_set(engines["spark"], entity_df)


def test_spark_materialises_what_duckdb_materialises(engines):
    views = {e: store.materialize(s, ML_WEEK, flow="interactions") for e, s in engines.items()}
    assert views["spark"] == views["duckdb"]
    assert {"user_activity_fv", "item_popularity_fv", "user_history_fv"} <= set(views["spark"])
    users = sorted(_curated(engines["duckdb"], "movielens", "interactions").user_id.unique())[:40]
    for view in ("user_activity_fv", "user_history_fv"):
        found = {e: online.online_features(s, view, [*users, "nobody"]) for e, s in engines.items()}
        assert found["spark"].known == found["duckdb"].known
        assert sum(found["spark"].known) > 20
        assert found["spark"].features == found["duckdb"].features, view
    items = ["1", "50", "181", "nothing"]
    found = {e: online.online_features(s, "item_popularity_fv", items) for e, s in engines.items()}
    assert found["spark"].known == found["duckdb"].known
    assert found["spark"].features == found["duckdb"].features


def test_spark_writes_a_training_set_without_collecting_it(engines, monkeypatch, tmp_path):
    """The path that scales: labels given as a query stay in Spark (never uploaded from a frame
    here), the joined rows are written by the executors (never collected); the file equals
    DuckDB's from the same labels as a frame."""
    from pyspark.sql import DataFrame, SparkSession

    from training.training_sets import read_training_set, write_joined_training_set

    sales = _curated(engines["duckdb"], "orange_juice", "sales")
    entity_df = pd.DataFrame(
        {
            "item_id": sales.item_id,
            "store_id": sales.store_id,
            "event_timestamp": pd.to_datetime(sales.week_start).dt.tz_localize("UTC"),
        }
    )
    metadata = {"dataset": "orange_juice", "feature_service": "pricing_v1"}
    duck = write_joined_training_set(
        engines["duckdb"], entity_df, "pricing_v1", metadata, tmp_path / "duckdb.parquet"
    )
    files = sorted((engines["spark"].curated_dir / "orange_juice" / "sales").glob("date=*/*"))
    labels = store.Labels(
        "SELECT item_id, store_id, CAST(week_start AS TIMESTAMP) AS event_timestamp FROM weeks",
        {"weeks": files},
    )

    def through_the_driver(self, *args, **kwargs):
        raise AssertionError("rows went through the driver")

    monkeypatch.setattr(DataFrame, "toPandas", through_the_driver)
    monkeypatch.setattr(SparkSession, "createDataFrame", through_the_driver)
    spark = write_joined_training_set(
        engines["spark"], labels, "pricing_v1", metadata, tmp_path / "spark.parquet"
    )
    assert spark.is_file()  # one file, as the readers expect
    (spark_frame, spark_metadata), (duck_frame, duck_metadata) = map(
        read_training_set, (spark, duck)
    )
    assert spark_metadata == duck_metadata == metadata
    assert_same_frame(spark_frame, duck_frame, ["item_id", "store_id"])


def test_every_view_reads_a_spark_source_on_spark(engines):
    from feast import FeatureView
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    duck = engines["duckdb"]
    spark = duck.model_copy(update={"engine": "spark"})
    views = {
        e: {o.name: o for o in store.definitions(s) if isinstance(o, FeatureView)}
        for e, s in (("duckdb", duck), ("spark", spark))
    }
    assert "user_session_fv" in views["spark"]  # the pushed view's offline source too
    for name, view in views["spark"].items():
        assert isinstance(view.batch_source, SparkSource), name
        assert view.batch_source.path == views["duckdb"][name].batch_source.path
    # a different source is a different definition: switching the engine re-applies
    assert store.fingerprint(store.definitions(spark)) != store.fingerprint(store.definitions(duck))


def test_the_spark_profile_configures_feasts_spark_stores(engines):
    config = store.repo_config(engines["spark"])
    assert config.offline_store.type == "spark"
    assert config.batch_engine.type == "spark.engine"
    for conf in (config.offline_store.spark_conf, config.batch_engine.spark_conf):
        assert conf["spark.master"] == "local[2]"
        assert conf["spark.pyspark.python"]  # the workers run this interpreter, with Feast
    assert store.repo_config(engines["duckdb"]).offline_store.type == "duckdb"
