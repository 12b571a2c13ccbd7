"""The rows the pricing model quotes from, read from the online store.

`PricingFeatures` resolves the `pricing_v1` feature service's views once (a service builds one at
start) and turns a batch of (item, store) pairs into feature rows, one store round trip per view.
`pricing_row` is the one-off form the CLI uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

PRICING_SERVICE = "pricing_v1"
MATERIALIZE_HINT = (
    "load the sales features into the online store first: `aisle features materialize sales "
    "--start YYYY-MM-DD --end YYYY-MM-DD` (or `aisle features run sales ...`)"
)


class NoOnlineFeatures(LookupError):
    """The online store holds no pricing features for an item in a store (or no registry)."""


class PricingFeatures:
    """Online `pricing_v1` rows for (item, store) pairs; resolve once, call per request.

    Raises `NoOnlineFeatures` at construction when the registry has no `pricing_v1`; a call
    raises `features.online.FeaturesUnavailable` when the store does not answer."""

    def __init__(self, settings: Settings, store: FeatureStore | None = None) -> None:
        from features.online import OnlineLookup
        from features.store import feature_store

        store = store or feature_store(settings)
        try:
            service = store.get_feature_service(PRICING_SERVICE)
        except Exception as exc:  # feast raises its own not-found types
            raise NoOnlineFeatures(
                f"no feature service {PRICING_SERVICE} in the feature registry; run "
                f"`aisle features apply`, then {MATERIALIZE_HINT}"
            ) from exc
        self.lookups = [
            OnlineLookup(settings, p.name, store) for p in service.feature_view_projections
        ]

    def rows(self, pairs: Sequence[tuple[str, str]]) -> tuple[pd.DataFrame, list[bool]]:
        """One row per pair, in order, stamped with the time of its shelf (`price`) row, the
        week the features describe; `found[i]` is False where the store has no shelf row for
        pair i (its row is then all NaN, for the caller to refuse)."""
        import numpy as np
        import pandas as pd

        records: list[dict[str, Any]] = [
            {"item_id": item, "store_id": store, "event_timestamp": None} for item, store in pairs
        ]
        for lookup in self.lookups:
            found = lookup([{k: r[k] for k in lookup.keys} for r in records])
            for n, record in enumerate(records):
                record.update(found.row(n))
                if "price" in found.features and found.known[n]:
                    record["event_timestamp"] = found.as_of[n]
        present = [r["event_timestamp"] is not None for r in records]
        frame = pd.DataFrame(
            [
                {k: np.nan if v is None and k != "event_timestamp" else v for k, v in r.items()}
                for r in records
            ]
        )
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
        return frame, present


def pricing_row(settings: Settings, item_id: str, store_id: str) -> pd.DataFrame:
    """The one row the pricing model quotes from for an item in a store.

    Raises `NoOnlineFeatures` when the registry has no `pricing_v1` or the store has no shelf row
    for the pair, and `features.online.FeaturesUnavailable` when the store does not answer."""
    frame, found = PricingFeatures(settings).rows([(item_id, store_id)])
    if not found[0]:
        raise NoOnlineFeatures(
            f"no online pricing features for item_id {item_id!r} in store_id {store_id!r} "
            f"(feature service {PRICING_SERVICE}): check the ids, or {MATERIALIZE_HINT}"
        )
    return frame
