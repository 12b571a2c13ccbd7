"""The canonical raw schemas every data source produces and every shop export must follow.

A raw file is CSV (UTF-8, comma-separated, one header line) or parquet with these columns. The
ETL parses and validates each row against them; `features.validation` holds the rules.

Timestamps are ISO 8601 (`2024-03-01T12:30:00Z`; without an offset they are read as UTC) or
integer unix seconds. Dates are `YYYY-MM-DD`. An export with other column names is mapped onto
these with a column map (`features.column_map`) as it is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnKind = Literal["id", "timestamp", "date", "float", "int", "flag", "category", "text"]

EVENT_TYPES: tuple[str, ...] = ("view", "add_to_cart", "purchase", "rating")


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    required: bool
    doc: str


@dataclass(frozen=True)
class TableSpec:
    """One canonical table: its columns, its event-time column and what makes two rows the same."""

    name: str
    columns: tuple[Column, ...]
    time_column: str | None  # None: an attribute table (a snapshot, not an event stream)
    key: tuple[str, ...]  # rows equal on the key describe the same event or entity
    open_columns: bool = False  # attribute tables may carry extra attribute columns

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


INTERACTIONS = TableSpec(
    name="interactions",
    columns=(
        Column("user_id", "id", True, "the shopper (any string; numbers are read as strings)"),
        Column("item_id", "id", True, "the item"),
        Column("timestamp", "timestamp", True, "when it happened (UTC)"),
        Column("event_type", "category", True, "one of " + ", ".join(EVENT_TYPES)),
        Column(
            "price",
            "float",
            False,
            "unit price paid or shown, > 0; a purchase without one is kept, its price missing",
        ),
        Column("quantity", "int", False, "units, >= 1"),
        Column("rating", "float", False, "explicit rating, for event_type=rating"),
        Column(
            "event_id",
            "id",
            False,
            "idempotency key: rows with the same event_id are one event, counted once",
        ),
        Column(
            "request_id",
            "id",
            False,
            "the answer (X-Request-Id) the shopper was shown, for attribution",
        ),
    ),
    time_column="timestamp",
    key=("user_id", "item_id", "timestamp", "event_type"),
)

SALES = TableSpec(
    name="sales",
    columns=(
        Column("item_id", "id", True, "the item"),
        Column("store_id", "id", True, "the store (or channel)"),
        Column("week_start", "date", True, "first day of the sales week"),
        Column("price", "float", True, "average unit price that week, > 0"),
        Column("units", "float", True, "units sold that week, >= 0"),
        Column("cost", "float", False, "unit cost, > 0"),
        Column("promo", "flag", False, "1 if the item was on a price deal, else 0"),
        Column("feature", "float", False, "share of the week the item was advertised, 0..1"),
    ),
    time_column="week_start",
    key=("item_id", "store_id", "week_start"),
)

ITEMS = TableSpec(
    name="items",
    columns=(
        Column("item_id", "id", True, "the item"),
        Column("name", "text", False, "display name"),
        Column("category", "text", False, "category; several separated by '|'"),
    ),
    time_column=None,
    key=("item_id",),
    open_columns=True,
)

STORES = TableSpec(
    name="stores",
    columns=(Column("store_id", "id", True, "the store"),),
    time_column=None,
    key=("store_id",),
    open_columns=True,
)

# A flow is the event table a model lives on, with the attribute tables that describe it.
FLOWS: dict[str, tuple[str, ...]] = {
    "interactions": ("interactions", "items"),  # the recommender's
    "sales": ("sales", "items", "stores"),  # the pricing model's
}

TABLES: dict[str, TableSpec] = {t.name: t for t in (INTERACTIONS, SALES, ITEMS, STORES)}


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; known tables: {', '.join(TABLES)}") from None
