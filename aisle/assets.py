"""The Airflow Assets the DAGs hand to each other (one place, so producer and consumer agree)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import Asset


def curated_asset(table: str) -> Asset:
    """Updated each time the ETL has written a table's curated partitions for an interval."""
    from airflow.sdk import Asset

    return Asset(name=f"curated_{table}", uri=f"aisle://curated/{table}", group="curated")


def features_asset() -> Asset:
    """Updated each time the features DAG has materialised an interval into the online store."""
    from airflow.sdk import Asset

    return Asset(name="online_features", uri="aisle://features/online", group="features")


def retrain_asset(model: str) -> Asset:
    """Updated when drift confirmed in a data interval asks for `model` to be retrained; the
    event's extra holds the interval end to train up to, the reason and the drift report."""
    from airflow.sdk import Asset

    return Asset(name=f"retrain_{model}", uri=f"aisle://retrain/{model}", group="retrain")


def challenger_asset(model: str) -> Asset:
    """Updated when a new version of `model` passed its gate (or was forced through) and waits
    for promotion; the event's extra holds the model, the version and the gate's verdict."""
    from airflow.sdk import Asset

    return Asset(name=f"challenger_{model}", uri=f"aisle://challenger/{model}", group="promotion")
