"""Weekly feature tables for the pricing model, computed from the curated sales zone.

    curated/<dataset>/sales/date=<week>/part-0.parquet      one partition per sales week
    curated/<dataset>/items/date=<day>/part-0.parquet       item snapshots (categories)
    curated/<dataset>/stores/date=<day>/part-0.parquet      store snapshots (attributes)
        -> SQL, one query per view and week, on DuckDB or Spark (AISLE_ENGINE, features.engines)
        -> features/<dataset>/<view>/date=<week>/part-0.parquet

Views, keyed by item and store:

* `item_price` (stamped at the week's start, when shelf prices and promotions are posted): the
  item's price, cost, promo and feature flags that week, the mean price of the other items of its
  category in the same store (`competitor_price_mean`), its price relative to them
  (`price_index`), the share of those other items on promotion (`competitor_promo_share`) and
  their mean feature (ad) intensity (`competitor_feature_mean`), and, where a category is small
  enough to list (at most `MAX_LISTED` items, as Dominick's 11 orange juice brands are), every
  item of the category with its price that week (`category_item_ids`, `category_prices`): the
  cross prices.
* `demand_history` (stamped at the week's end, when its sales are known): the units of that week,
  their log (ln(1 + units)) and the week's price (`price_lag1`: a price cut is measured against
  it), and over the four weeks ending with it the mean log units, mean
  units, mean price, promo share and the number of weeks with sales. A label in week w is joined to
  the row of week w - 1: lagged demand.

and by store:

* `store_attributes` (stamped at the snapshot's date): every attribute column of the stores
  snapshot, numbers as float64; the Feast fields are generated from this schema, whatever
  columns a shop's store table brings.

Items whose category the snapshot does not know are grouped together. Outputs depend only on the
curated partitions they read, so reruns give byte-identical files; a week of the interval without
sales loses any feature partition an earlier run left for it.
"""

from __future__ import annotations

import logging
import shutil
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.files import write_parquet_atomic
from core.settings import Settings

from .engines import Engine, open_engine
from .etl import CURATED_FILE
from .feature_tables import (
    CATEGORIES_SQL,
    FEATURE_FILE,
    NO_CATEGORIES_SQL,
    TIMESTAMP,
    epoch_us,
    feature_dir,
    latest_snapshot,
    with_timestamp,
)
from .storage import Interval, list_partitions, partition_dir

log = logging.getLogger(__name__)

HISTORY_WEEKS = 4
MAX_LISTED = 32  # categories with more items get no cross-price lists (the index still applies)
_KEYS = [pa.field("item_id", pa.string()), pa.field("store_id", pa.string())]

ITEM_PRICE_SCHEMA = pa.schema(
    [
        *_KEYS,
        pa.field("event_timestamp", TIMESTAMP),
        pa.field("price", pa.float64()),
        pa.field("cost", pa.float64()),
        pa.field("promo", pa.int64()),
        pa.field("feature", pa.float64()),
        pa.field("competitors", pa.int64()),
        pa.field("competitor_price_mean", pa.float64()),
        pa.field("price_index", pa.float64()),
        pa.field("competitor_promo_share", pa.float64()),
        pa.field("competitor_feature_mean", pa.float64()),
        pa.field("category_item_ids", pa.list_(pa.string())),
        pa.field("category_prices", pa.list_(pa.float64())),
    ]
)
DEMAND_HISTORY_SCHEMA = pa.schema(
    [
        *_KEYS,
        pa.field("event_timestamp", TIMESTAMP),
        pa.field("units_lag1", pa.float64()),
        pa.field("price_lag1", pa.float64()),
        pa.field("log_units_lag1", pa.float64()),
        pa.field("log_units_mean_4w", pa.float64()),
        pa.field("units_mean_4w", pa.float64()),
        pa.field("price_mean_4w", pa.float64()),
        pa.field("promo_share_4w", pa.float64()),
        pa.field("weeks_sold_4w", pa.int64()),
    ]
)
PRICING_SCHEMAS: dict[str, pa.Schema] = {
    "item_price": ITEM_PRICE_SCHEMA,
    "demand_history": DEMAND_HISTORY_SCHEMA,
}
STORE_ATTRIBUTES = "store_attributes"

# Sums run over sorted lists: a parallel sum() adds in thread order and can change the last bit
# between runs, and reruns must give the same bytes.
_ITEM_PRICE_SQL = """
WITH {categories},
week AS (
    SELECT s.item_id, s.store_id, s.price, s.cost, s.promo::BIGINT AS promo, s.feature,
           coalesce(c.category, '') AS grp
    FROM week_file AS s LEFT JOIN categories AS c ON s.item_id = c.item_id
),
shelf AS (
    SELECT store_id, grp, count(*) AS n,
           list_sum(list_sort(list(price))) AS total,
           sum(promo) AS promos,
           list_sum(list_sort(list(feature))) AS features,
           list(item_id ORDER BY item_id) AS ids,
           list(price ORDER BY item_id) AS prices
    FROM week
    GROUP BY store_id, grp
)
SELECT w.item_id, w.store_id, w.price, w.cost, w.promo, w.feature,
       s.n - 1 AS competitors,
       CASE WHEN s.n > 1 THEN (s.total - w.price) / (s.n - 1) END AS competitor_price_mean,
       CASE WHEN s.n > 1 THEN w.price / ((s.total - w.price) / (s.n - 1)) END AS price_index,
       CASE WHEN s.n > 1 THEN (s.promos - w.promo) / (s.n - 1) END AS competitor_promo_share,
       CASE WHEN s.n > 1 THEN (s.features - w.feature) / (s.n - 1) END
           AS competitor_feature_mean,
       CASE WHEN s.n <= {max_listed} THEN s.ids END AS category_item_ids,
       CASE WHEN s.n <= {max_listed} THEN s.prices END AS category_prices
FROM week AS w JOIN shelf AS s ON w.store_id = s.store_id AND w.grp = s.grp
ORDER BY w.item_id, w.store_id
"""

_DEMAND_HISTORY_SQL = """
WITH sales AS (
    SELECT item_id, store_id, week_start, units, price, promo, ln(1 + units) AS log_units
    FROM history_files
)
SELECT item_id, store_id,
       max(units) FILTER (WHERE week_start = $week) AS units_lag1,
       max(price) FILTER (WHERE week_start = $week) AS price_lag1,
       max(log_units) FILTER (WHERE week_start = $week) AS log_units_lag1,
       list_avg(list_sort(list(log_units))) AS log_units_mean_4w,
       list_avg(list_sort(list(units))) AS units_mean_4w,
       list_avg(list_sort(list(price))) AS price_mean_4w,
       avg(promo::DOUBLE) AS promo_share_4w,
       count(DISTINCT week_start) AS weeks_sold_4w
FROM sales
GROUP BY item_id, store_id
ORDER BY item_id, store_id
"""


def build_pricing_tables(
    settings: Settings, dataset: str, interval: Interval
) -> dict[str, list[Path]]:
    """Write the pricing views for every sales week that starts in `interval`, and the store
    attributes of every stores snapshot dated in [start, end]. Returns view -> paths written."""
    if not list_partitions(settings.curated_dir, dataset, "sales"):
        raise FileNotFoundError(
            f"no curated sales for dataset {dataset!r} under "
            f"{settings.curated_dir / dataset / 'sales'}; run the ingest first "
            "(`aisle replay sales` or the ingest_sales DAG)"
        )
    written: dict[str, list[Path]] = {view: [] for view in (*PRICING_SCHEMAS, STORE_ATTRIBUTES)}
    with open_engine(settings) as engine:
        for day in interval.days():
            week_file = partition_dir(settings.curated_dir, dataset, "sales", day) / CURATED_FILE
            for view in PRICING_SCHEMAS:
                folder = feature_dir(settings, dataset, view) / f"date={day.isoformat()}"
                if not _has_rows(week_file):  # the ETL writes an empty partition for such days
                    shutil.rmtree(folder, ignore_errors=True)  # ... and so loses stale features
                    continue
                table = (
                    _item_price(engine, settings, dataset, day, week_file)
                    if view == "item_price"
                    else _demand_history(engine, settings, dataset, day)
                )
                written[view].append(write_parquet_atomic(table, folder / FEATURE_FILE))
        snapshot_days = [*interval.days(), interval.end.date()]
        for snapshot in list_partitions(settings.curated_dir, dataset, "stores"):
            day = date.fromisoformat(snapshot.name.removeprefix("date="))
            if day in snapshot_days and (snapshot / CURATED_FILE).exists():
                table = store_attributes_table(snapshot / CURATED_FILE, day)
                folder = feature_dir(settings, dataset, STORE_ATTRIBUTES) / snapshot.name
                written[STORE_ATTRIBUTES].append(write_parquet_atomic(table, folder / FEATURE_FILE))
    log.info(
        "pricing features %s %s: %s",
        dataset,
        interval,
        ", ".join(f"{view} {len(paths)}" for view, paths in written.items()),
    )
    return written


def _has_rows(path: Path) -> bool:
    return path.exists() and pq.read_metadata(path).num_rows > 0


def item_price_sql(categorised: bool) -> str:
    """The item_price query, with the item snapshot's categories or without a snapshot."""
    return _ITEM_PRICE_SQL.format(
        categories=CATEGORIES_SQL if categorised else NO_CATEGORIES_SQL, max_listed=MAX_LISTED
    )


def queries() -> dict[str, str]:
    """Every query this module runs, by name (the engines' tests transpile each)."""
    return {
        "item_price": item_price_sql(categorised=True),
        "item_price_uncategorised": item_price_sql(categorised=False),
        "demand_history": _DEMAND_HISTORY_SQL,
    }


def _item_price(
    engine: Engine, settings: Settings, dataset: str, week: date, week_file: Path
) -> pa.Table:
    item_file = latest_snapshot(settings, dataset, "items", week)  # known when the week starts
    engine.register("week_file", [week_file])
    if item_file is not None:
        engine.register("item_file", [item_file])
    result = engine.query(item_price_sql(categorised=item_file is not None))
    return with_timestamp(result, epoch_us(week), ITEM_PRICE_SCHEMA)


def _demand_history(engine: Engine, settings: Settings, dataset: str, week: date) -> pa.Table:
    days = [week - timedelta(days=back) for back in range(7 * HISTORY_WEEKS - 1, -1, -1)]
    files = [
        path
        for d in days
        if (
            path := partition_dir(settings.curated_dir, dataset, "sales", d) / CURATED_FILE
        ).exists()
    ]
    engine.register("history_files", files)
    result = engine.query(_DEMAND_HISTORY_SQL, {"week": week})
    return with_timestamp(result, epoch_us(week + timedelta(days=7)), DEMAND_HISTORY_SCHEMA)


def store_attributes_table(snapshot_file: Path, as_of: date) -> pa.Table:
    """The store_attributes table of a curated stores snapshot: the key, the timestamp, then every
    attribute but the name. Numbers and flags become float64, and so does a text column whose
    values all read as numbers (a CSV export's extra columns arrive as text); the rest stays text.
    """
    snapshot = pq.read_table(snapshot_file).sort_by("store_id")
    fields = [pa.field("store_id", pa.string()), pa.field("event_timestamp", TIMESTAMP)]
    for column in snapshot.schema:
        if column.name not in ("store_id", "name"):
            fields.append(pa.field(column.name, _attribute_type(snapshot.column(column.name))))
    return with_timestamp(snapshot, epoch_us(as_of), pa.schema(fields))


def _attribute_type(values: pa.ChunkedArray) -> pa.DataType:
    kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return pa.float64()
    try:
        values.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.string()
    return pa.float64()


def latest_store_attributes_schema(settings: Settings, dataset: str) -> pa.Schema | None:
    """The schema of the newest store_attributes table, or None before any store snapshot."""
    partitions = list_partitions(settings.data_dir / "features", dataset, STORE_ATTRIBUTES)
    files = [p / FEATURE_FILE for p in partitions if (p / FEATURE_FILE).exists()]
    return pq.read_schema(files[-1]) if files else None


__all__ = [
    "DEMAND_HISTORY_SCHEMA",
    "ITEM_PRICE_SCHEMA",
    "PRICING_SCHEMAS",
    "STORE_ATTRIBUTES",
    "build_pricing_tables",
    "item_price_sql",
    "latest_store_attributes_schema",
    "queries",
    "store_attributes_table",
]
