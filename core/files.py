"""Writes that are atomic: a reader (or a crash) sees the old file or the new one, never half of
one. Every zone, report and state file of Aisle is written through these; secrets (the admin
token, passwords, keys) through `create_private_file`, readable by their owner only."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it over `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet_atomic(table: pa.Table, final: Path) -> Path:
    """Write a parquet file deterministically (same table, same bytes) and atomically."""
    import pyarrow.parquet as pq  # here: importing core stays light (the CLI starts fast)

    with atomic_path(final) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True, store_schema=True)
    return final


def write_parquet_durable(table: pa.Table, final: Path) -> Path:
    """As `write_parquet_atomic`, and on disk before it returns (the file and its folder
    synced): what a consumer writes before it acknowledges a message survives a power cut."""
    import pyarrow.parquet as pq

    with atomic_path(final) as tmp:
        pq.write_table(table, tmp, compression="zstd")
        with tmp.open("rb") as written:
            os.fsync(written.fileno())
    folder = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return final


def write_json_atomic(payload: dict[str, Any], final: Path) -> Path:
    with atomic_path(final) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return final


def write_with(final: Path, writer: Callable[[Path], None]) -> Path:
    """Run `writer(tmp)` and move the result to `final` atomically."""
    with atomic_path(final) as tmp:
        writer(tmp)
    return final


def create_private_file(path: Path, text: str) -> None:
    """Write a new file only its owner may read (0600 from its creation, never after)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
