"""The simulated shop on disk: its tables as parquet files and its truth beside them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from core.files import write_json_atomic, write_parquet_atomic

from .shop import SimulatedShop


def write_shop(shop: SimulatedShop, dest: Path) -> dict[str, Path]:
    """Write interactions/sales/items/stores as parquet files dest/<table>.parquet and the ground
    truth under dest/truth/ (parquet tables + truth.json with drift schedule, config, counts).
    Each file is written atomically. Returns table name -> path ("truth/<name>" for truth tables,
    "truth" for truth.json)."""
    dest = Path(dest)
    frames = {
        "interactions": shop.interactions,
        "sales": shop.sales,
        "items": shop.items,
        "stores": shop.stores,
    }
    paths = {name: dest / f"{name}.parquet" for name in frames}
    truth_frames = {k: v for k, v in shop.truth.items() if isinstance(v, pd.DataFrame)}
    for name, frame in truth_frames.items():
        frames[f"truth/{name}"] = frame
        paths[f"truth/{name}"] = dest / "truth" / f"{name}.parquet"
    for name, frame in frames.items():
        write_parquet_atomic(pa.Table.from_pandas(frame, preserve_index=False), paths[name])
    payload: dict[str, Any] = {k: v for k, v in shop.truth.items() if k not in truth_frames}
    payload["counts"] = {name: len(frame) for name, frame in frames.items()}
    paths["truth"] = write_json_atomic(payload, dest / "truth" / "truth.json")
    return paths
