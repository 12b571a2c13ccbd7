"""The feature tables on Spark: a few days of real MovieLens and a few weeks of Dominick's orange
juice, curated once, their features built by DuckDB and by Spark (local[2]) into two data
folders; every partition file of every view holds the same rows and values (floats to 1e-12
relative: Java's ln can differ from glibc's in the last bit). And without Java, the engine's
error says which setting chose Spark and how to install Java."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.settings import Settings, SparkEngine, get_settings
from features.pipeline import build_step
from features.sources.orange_juice import week_start

pytestmark = [pytest.mark.integration, pytest.mark.slow]
log = logging.getLogger(__name__)

MOVIELENS_DAYS = (date(1997, 12, 1), date(1997, 12, 5))  # 4 days: history from scratch, extended
JUICE_WEEKS = (week_start(40), week_start(45))  # 5 weeks: 4-week demand histories fill up
REL_TOL = 1e-12
# local[2] at most: the suite runs on two cores
LOCAL_SPARK = SparkEngine(master="local[2]", driver_memory="1g", shuffle_partitions=2)


def _curated(prepared_settings: Settings, folder: Path, flow: str, start: date, end: date):
    """Settings over a data folder whose curated zone holds `flow` for [start, end)."""
    from features.ingest import ingest, ingest_attributes

    data_dir = folder / "duckdb"
    data_dir.mkdir(parents=True)
    (data_dir / "sources").symlink_to(prepared_settings.sources_dir.resolve())
    settings = prepared_settings.model_copy(update={"data_dir": data_dir, "engine": "duckdb"})
    if flow == "sales":
        settings = settings.model_copy(update={"sales_source": "orange_juice"})
        ingest_attributes("sales", start - timedelta(days=1), start, settings)  # stores first
    ingest(flow, start, end, settings)
    return settings


def _on_spark(settings: Settings) -> Settings:
    """The same curated zone and sources, another data folder for the features, engine spark."""
    data_dir = settings.data_dir.parent / "spark"
    data_dir.mkdir()
    for zone in ("sources", "curated"):
        (data_dir / zone).symlink_to((settings.data_dir / zone).resolve())
    return settings.model_copy(
        update={"data_dir": data_dir, "engine": "spark", "spark": LOCAL_SPARK}
    )


def _build_both(duck: Settings, flow: str, start: date, end: date) -> dict[str, float]:
    spark = _on_spark(duck)
    seconds = {}
    for settings in (duck, spark):
        started = time.perf_counter()
        build_step(flow, start, end, settings)
        seconds[settings.engine] = time.perf_counter() - started
    from pyspark.sql import SparkSession

    assert SparkSession.getActiveSession() is not None  # the spark build did run on Spark
    log.info("%s features of [%s, %s) in seconds: %s", flow, start, end, seconds)
    return seconds


@pytest.fixture(scope="module")
def movielens(prepared_settings, tmp_path_factory) -> Settings:
    folder = tmp_path_factory.mktemp("spark-movielens")
    duck = _curated(prepared_settings, folder, "interactions", *MOVIELENS_DAYS)
    _build_both(duck, "interactions", *MOVIELENS_DAYS)
    return duck


@pytest.fixture(scope="module")
def orange_juice(prepared_settings, tmp_path_factory) -> Settings:
    folder = tmp_path_factory.mktemp("spark-juice")
    duck = _curated(prepared_settings, folder, "sales", *JUICE_WEEKS)
    _build_both(duck, "sales", *JUICE_WEEKS)
    return duck


def test_movielens_features_are_the_same_on_spark(movielens):
    compared = _compare_every_partition(movielens.data_dir.parent)
    assert compared == {
        "user_activity": 4,
        "item_popularity": 4,
        "user_history": 4,
    }


def test_orange_juice_features_are_the_same_on_spark(orange_juice):
    compared = _compare_every_partition(orange_juice.data_dir.parent)
    assert compared == {"item_price": 5, "demand_history": 5, "store_attributes": 2}


def _compare_every_partition(folder: Path) -> dict[str, int]:
    """Compare each partition file DuckDB wrote with Spark's; view -> files compared."""
    duck_root, spark_root = folder / "duckdb" / "features", folder / "spark" / "features"
    duck_files = sorted(p.relative_to(duck_root) for p in duck_root.rglob("*.parquet"))
    spark_files = sorted(p.relative_to(spark_root) for p in spark_root.rglob("*.parquet"))
    assert duck_files == spark_files
    compared: dict[str, int] = {}
    for relative in duck_files:
        expected, actual = pq.read_table(duck_root / relative), pq.read_table(spark_root / relative)
        assert actual.schema.equals(expected.schema), relative
        assert actual.num_rows == expected.num_rows > 0, relative
        for name in expected.column_names:
            for row, (want, got) in enumerate(
                zip(expected.column(name).to_pylist(), actual.column(name).to_pylist(), strict=True)
            ):
                assert _same(want, got), f"{relative} {name} row {row}: {want!r} != {got!r}"
        view = relative.parts[1]
        compared[view] = compared.get(view, 0) + 1
    return compared


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(want, got, rel_tol=REL_TOL) or (math.isnan(want) and math.isnan(got))
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(_same(w, g) for w, g in zip(want, got, strict=True))
    return type(want) is type(got) and want == got


def test_a_view_of_no_files_is_empty_with_its_schema(tmp_path):
    from features.engines import open_engine

    schema = pa.schema([pa.field("user_id", pa.string()), pa.field("ts", pa.int64())])
    settings = get_settings(data_dir=tmp_path, engine="spark", spark=LOCAL_SPARK)
    with open_engine(settings) as engine:
        engine.register("nothing", [], schema)
        result = engine.query("SELECT user_id, max(ts) AS last_ts FROM nothing GROUP BY user_id")
    assert result.num_rows == 0
    assert result.schema.names == ["user_id", "last_ts"]
    assert result.schema.field("last_ts").type == pa.int64()


def test_without_java_spark_says_how_to_get_it(tmp_path):
    """A fresh process (this one's JVM is already up) whose JAVA_HOME leads nowhere."""
    script = (
        "from core.settings import get_settings\n"
        "from features.engines.spark import spark_session\n"
        f"spark_session(get_settings(engine='spark', data_dir={str(tmp_path)!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "JAVA_HOME": str(tmp_path / "no-jdk")},
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("RuntimeError: AISLE_ENGINE=spark")
    assert "`make java`" in last_line
