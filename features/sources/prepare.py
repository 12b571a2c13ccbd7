"""Prepare the built-in data sets: fetch what is missing, convert to canonical parquet timelines.

`data/sources/<name>/<table>.parquet` is what the replay lands from; `manifest.json` beside it
records what was prepared, from what, and the row counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from core.files import write_json_atomic, write_parquet_atomic
from core.settings import BUILTIN_SOURCES, Settings

from . import movielens, orange_juice


def external_dir(settings: Settings) -> Path:
    """Where downloaded packages are unpacked."""
    return settings.data_dir / "external"


def load_builtin(settings: Settings, name: str) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The built-in data set `name` as canonical frames, and what describes its origin."""
    if name == "movielens":
        return movielens.load(), {"origin": "PyPI recbole==1.2.1, dataset_example/ml-100k"}
    if name == "orange_juice":
        rda = orange_juice.fetch(external_dir(settings))
        origin = {"origin": f"Debian r-cran-bayesm, {rda}", "price_unit": orange_juice.PRICE_UNIT}
        return orange_juice.load(external_dir(settings)), origin
    if name == "simulator":
        from .simulator import SimulatorConfig, simulate, write_shop

        config = SimulatorConfig(**settings.simulator)
        shop = simulate(config)
        write_shop(shop, settings.sources_dir / name)  # the ground truth lands beside the tables
        tables = {
            "interactions": shop.interactions,
            "sales": shop.sales,
            "items": shop.items,
            "stores": shop.stores,
        }
        return tables, {"origin": "Aisle shop simulator", "config": config.model_dump(mode="json")}
    raise ValueError(f"unknown built-in source {name!r}; choose from {', '.join(BUILTIN_SOURCES)}")


def is_prepared(settings: Settings, name: str) -> bool:
    manifest = settings.sources_dir / name / "manifest.json"
    if not manifest.exists():
        return False
    recorded = json.loads(manifest.read_text())
    if name == "simulator":  # regenerate when the simulator settings change
        return recorded.get("settings") == settings.simulator
    if name == "orange_juice":  # prepared per ounce by an older Aisle: per carton now
        return recorded.get("price_unit") == orange_juice.PRICE_UNIT
    return True


def prepare(settings: Settings, name: str, force: bool = False) -> dict[str, Any]:
    """Prepare one built-in source (skipped when already prepared, unless `force`)."""
    folder = settings.sources_dir / name
    if not force and is_prepared(settings, name):
        return json.loads((folder / "manifest.json").read_text())
    tables, origin = load_builtin(settings, name)
    counts = {}
    for table, frame in tables.items():
        write_parquet_atomic(
            pa.Table.from_pandas(frame, preserve_index=False), folder / f"{table}.parquet"
        )
        counts[table] = len(frame)
    manifest = {
        "source": name,
        "tables": counts,
        **origin,
        "settings": settings.simulator if name == "simulator" else None,
    }
    write_json_atomic(manifest, folder / "manifest.json")
    return manifest
