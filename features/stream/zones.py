"""What the event stream's consumer writes to disk, each file durable before the batch is
acknowledged:

    raw/<dataset>/interactions/stream/date=<day>/<batch>.parquet   the events, by their UTC day;
                                                   the ETL of the interval holding the day
                                                   curates them (deduplicated by event_id)
    answers/date=<day>/<batch>.parquet             the answer log: every answer the models gave
    quarantine/stream/<subject>/date=<day>/<batch>.parquet   dead letters: a message that is not
                                                   what its subject carries, with the reason
    events/backlog/<batch>.parquet                 events not yet in the online store (it was
                                                   down); replayed, oldest first, once it is back

A batch's files are named by the time it was written and a random suffix, so a batch delivered
again lands beside the first copy, never over it; the ETL and the answer-log readers drop the
repeat by its id.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.events import Event
from core.files import write_parquet_durable
from core.settings import Settings

from ..storage import stream_partition_dir

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("event_type", pa.string()),
        ("price", pa.float64()),
        ("quantity", pa.int64()),
        ("rating", pa.float64()),
        ("request_id", pa.string()),
    ]
)
DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("subject", pa.string()),
        ("reason", pa.string()),
        ("reasons", pa.string()),
        ("raw", pa.string()),
    ]
)


def batch_name() -> str:
    return f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"


def events_table(events: list[Event]) -> pa.Table:
    columns = {f.name: [getattr(e, f.name) for e in events] for f in EVENT_SCHEMA}
    return pa.table(columns, schema=EVENT_SCHEMA)


def write_raw_events(settings: Settings, dataset: str, events: list[Event]) -> list[Path]:
    """The events into the raw zone, one durable file per UTC day they fall on."""
    by_day: dict[str, list[Event]] = {}
    for event in events:
        by_day.setdefault(event.timestamp.date().isoformat(), []).append(event)
    name = batch_name()
    return [
        write_parquet_durable(
            events_table(day_events), stream_partition_dir(settings.raw_dir, dataset, day) / name
        )
        for day, day_events in sorted(by_day.items())
    ]


def write_dead_letters(settings: Settings, subject: str, letters: list[tuple[bytes, str]]) -> Path:
    """Messages that could not be read, each with its reason, into the quarantine zone."""
    now = datetime.now(UTC)
    table = pa.table(
        {
            "received_at": [now] * len(letters),
            "subject": [subject] * len(letters),
            "reason": [reason.split(":")[0] for _, reason in letters],
            "reasons": [reason for _, reason in letters],
            "raw": [raw.decode("utf-8", "replace") for raw, _ in letters],
        },
        schema=DEAD_LETTER_SCHEMA,
    )
    folder = dead_letter_dir(settings, subject, now.date().isoformat())
    return write_parquet_durable(table, folder / batch_name())


def dead_letter_dir(settings: Settings, subject: str, day: str) -> Path:
    return settings.quarantine_dir / "stream" / subject / f"date={day}"


def write_answers(settings: Settings, records: list[dict[str, Any]]) -> list[Path]:
    """Answer-log records (serving.answer_log makes them) into answers/date=<day>/."""
    by_day: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_day.setdefault(record["at"][:10], []).append(record)
    name = batch_name()
    written = []
    for day, rows in sorted(by_day.items()):
        table = pa.Table.from_pylist([_answer_row(r) for r in rows], schema=ANSWER_SCHEMA)
        written.append(write_parquet_durable(table, settings.answers_dir / f"date={day}" / name))
    return written


ANSWER_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("path", pa.string()),
        ("model", pa.string()),
        ("version", pa.string()),
        ("colour", pa.string()),
        ("experiment", pa.string()),
        ("arm", pa.string()),
        ("status", pa.int64()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("store_id", pa.string()),
        ("context", pa.string()),
        ("item_ids", pa.list_(pa.string())),
        ("scores", pa.list_(pa.float64())),
        ("price", pa.float64()),
        ("fallback", pa.bool_()),
    ]
)


def _answer_row(record: dict[str, Any]) -> dict[str, Any]:
    row = {name: record.get(name) for name in ANSWER_SCHEMA.names}
    row["at"] = datetime.fromisoformat(record["at"])
    if isinstance(row["context"], dict):
        row["context"] = json.dumps(row["context"], sort_keys=True)
    return row


def read_answers(settings: Settings, day: str | None = None) -> pa.Table:
    """The answer log (one day, or all of it) in time order, each request_id once (a batch
    delivered twice is written twice)."""
    pattern = f"date={day}/*.parquet" if day else "date=*/*.parquet"
    files = sorted(settings.answers_dir.glob(pattern))
    if not files:
        return ANSWER_SCHEMA.empty_table()
    table = pa.concat_tables([pq.read_table(f, schema=ANSWER_SCHEMA) for f in files])
    ids = table.column("request_id").to_pylist()
    first = sorted({rid: i for i, rid in reversed(list(enumerate(ids)))}.values())
    return table.take(pa.array(first, type=pa.int64())).sort_by([("at", "ascending")])


def backlog_dir(settings: Settings) -> Path:
    return settings.events_dir / "backlog"


def write_backlog(settings: Settings, events: list[Event]) -> Path:
    return write_parquet_durable(events_table(events), backlog_dir(settings) / batch_name())


def backlog_files(settings: Settings) -> list[Path]:
    folder = backlog_dir(settings)
    return sorted(folder.glob("*.parquet")) if folder.exists() else []


def read_events(path: Path) -> list[Event]:
    rows = pq.read_table(path, schema=EVENT_SCHEMA).to_pylist()
    return [Event.model_validate({k: v for k, v in r.items() if v is not None}) for r in rows]
