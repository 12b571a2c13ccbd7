"""Map an export's own column names onto the canonical schema, as one option.

A mapping reads canonical = the export's: `user_id=customer_id,item_id=sku`. A value that starts
with `:` is a constant for a column the export lacks: an order log has no event type, every row
is a purchase, so `event_type=:purchase`. The same pairs come from `--map`, from a mapping file
(`--map-file`: JSON, YAML or TOML, one object of canonical -> column) or from the setting
`AISLE_COLUMN_MAP__<TABLE>` (e.g. `AISLE_COLUMN_MAP__INTERACTIONS='{"user_id": "customer_id"}'`).

The mapping is applied where a raw file is read (`features.reading.open_raw_file`), not when it
lands: the raw zone keeps the shop's bytes as they came, quarantine line numbers point into the
shop's own file, and a corrected mapping needs only a rerun of the ETL, not a new landing.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

CONSTANT = ":"  # `event_type=:purchase`: every row's event_type is "purchase"


class ColumnMapError(ValueError):
    """A mapping that cannot be read; the message says what is wrong and how to write it."""


def parse_map(text: str) -> dict[str, str]:
    """`user_id=customer_id,event_type=:purchase` as {canonical: column or :constant}."""
    mapping: dict[str, str] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        canonical, sep, source = (part.strip() for part in pair.partition("="))
        if not sep or not canonical or not source or source == CONSTANT:
            raise ColumnMapError(
                f"cannot read {pair!r} in --map {text!r}: write canonical=column pairs, comma "
                "separated, e.g. --map user_id=customer_id,item_id=sku (a constant: "
                "event_type=:purchase)"
            )
        if canonical in mapping:
            raise ColumnMapError(f"--map {text!r} maps {canonical} twice")
        mapping[canonical] = source
    return mapping


def load_map_file(path: Path) -> dict[str, str]:
    """A mapping file: one JSON, YAML or TOML object of canonical name -> the export's column."""
    if not path.is_file():
        raise ColumnMapError(f"no mapping file at {path}")
    import yaml

    readers = {".json": json.loads, ".toml": tomllib.loads, ".yaml": yaml.safe_load}
    reader = readers.get(".yaml" if path.suffix == ".yml" else path.suffix)
    if reader is None:
        raise ColumnMapError(f"{path}: a mapping file is .json, .yaml or .toml")
    try:
        data = reader(path.read_text(encoding="utf-8"))
    except (ValueError, yaml.YAMLError) as exc:  # JSON and TOML errors are ValueErrors
        raise ColumnMapError(f"{path}: not a readable mapping file ({exc})") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in data.items()
    ):
        raise ColumnMapError(
            f"{path}: expected one object of canonical name -> column, e.g. "
            '{"user_id": "customer_id", "event_type": ":purchase"}'
        )
    return {k.strip(): v.strip() for k, v in data.items()}


def split_map(mapping: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(canonical -> the export's column, canonical -> constant value)."""
    columns = {k: v for k, v in mapping.items() if not v.startswith(CONSTANT)}
    constants = {k: v[len(CONSTANT) :] for k, v in mapping.items() if v.startswith(CONSTANT)}
    return columns, constants


def map_option(mapping: dict[str, str]) -> str:
    """A mapping as the `--map` option that gives it, for error messages."""
    return "--map " + ",".join(f"{k}={v}" for k, v in mapping.items())
