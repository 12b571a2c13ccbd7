"""DuckDB's dialect to Spark SQL: sqlglot's transpile, plus the few rewrites it lacks.

The feature queries are written once, in a form both engines read (view names instead of
read_parquet, `array_slice` / `array_length` instead of slices and `len`). sqlglot translates
the rest, except for four DuckDB constructs that Spark spells differently or not at all, and
which sqlglot passes through unchanged or translates wrongly:

* `epoch_us(ts)`            -> `unix_micros(ts)`
* `list_sum(l)`             -> a left-to-right fold, so the sum of a sorted list is the same
                               double, bit for bit, as DuckDB's
* `list_avg(l)`             -> that fold over `size(l)`, NULL for an empty list as in DuckDB
                               (Spark's ANSI mode would raise on 0 / 0)
* `list(v ORDER BY k, ...)` -> collect (k, ..., v) structs, sort them with a comparator, keep v:
                               sqlglot writes COLLECT_LIST(v) and silently drops the ORDER BY

Keys of an ordered list are assumed non-null (the queries order by ids and times).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import exp

# What must not survive a transpile: DuckDB functions that Spark does not know.
DUCKDB_ONLY_FUNCTIONS = ("EPOCH_US", "LIST_SUM", "LIST_AVG", "READ_PARQUET", "LEN")


def to_spark(sql: str) -> str:
    """`sql` (DuckDB's dialect, $parameters) as Spark SQL (:parameters)."""
    return sqlglot.parse_one(sql, read="duckdb").transform(_rewrite).sql("spark", pretty=True)


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous):
        name = node.name.upper()
        if name == "EPOCH_US":
            return exp.Anonymous(this="UNIX_MICROS", expressions=node.expressions)
        if name == "LIST_SUM":
            return _fold_sum(node.expressions[0])
        if name == "LIST_AVG":
            values = node.expressions[0].transform(_rewrite)
            return _template(
                "CASE WHEN SIZE(__values) > 0 THEN __sum / SIZE(__values) END",
                __values=lambda: values.copy(),
                __sum=lambda: _fold_sum(values),
            )
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
        return _ordered_list(node.this)
    return node


def _fold_sum(values: exp.Expression) -> exp.Expression:
    """The sum of a list, added left to right as DuckDB's list_sum does."""
    values = values.transform(_rewrite)
    return _template(
        "AGGREGATE(__values, CAST(0 AS DOUBLE), (acc, x) -> acc + x)",
        __values=lambda: values.copy(),
    )


def _ordered_list(order: exp.Order) -> exp.Expression:
    """list(v ORDER BY k0 [DESC], k1 ...) as sorted structs, of which v is kept."""
    keys = order.expressions
    fields = [exp.alias_(key.this.transform(_rewrite), f"_k{i}") for i, key in enumerate(keys)]
    fields.append(exp.alias_(order.this.transform(_rewrite), "_v"))
    comparisons = []
    for i, key in enumerate(keys):
        before, after = ("1", "-1") if key.args.get("desc") else ("-1", "1")
        comparisons.append(
            f"WHEN l._k{i} < r._k{i} THEN {before} WHEN l._k{i} > r._k{i} THEN {after}"
        )
    collected = exp.ArrayAgg(this=exp.Struct(expressions=fields))
    return _template(
        f"TRANSFORM(ARRAY_SORT(__structs, (l, r) -> CASE {' '.join(comparisons)} ELSE 0 END),"
        " s -> s._v)",
        __structs=lambda: collected.copy(),
    )


def _template(spark_sql: str, **holes: Callable[[], exp.Expression]) -> exp.Expression:
    """`spark_sql` with each placeholder column replaced by a fresh copy of its expression.
    (sqlglot's transform does not descend into a node it has just replaced, so each hole's
    expression is rewritten before it is put in.)"""

    def fill(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name in holes:
            return holes[node.name]()
        return node

    return sqlglot.parse_one(spark_sql, read="spark").transform(fill)
