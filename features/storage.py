"""Where each zone keeps its partitions, and writes that are atomic.

Layout under the data folder (`dataset` is the source's name: movielens, orange_juice, simulator
or the stem of a shop's file):

    raw/<dataset>/<table>/date=<interval start>/<file>          as landed, untouched
    raw/<dataset>/interactions/stream/date=<day>/<batch>.parquet what the event stream delivered
    curated/<dataset>/<table>/date=<day>/part-0.parquet          validated, deduplicated, typed
    quarantine/<dataset>/<table>/date=<interval start>/quarantine.parquet   rejected rows + reason
    runs/<dataset>/<table>/date=<interval start>.json            the run summary

A curated partition is one file, replaced with `os.replace`: a reader (or a crash) sees the old
partition or the new one, never half of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path


@dataclass(frozen=True)
class Interval:
    """A data interval [start, end), in UTC, as Airflow hands it to a task."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            object.__setattr__(self, name, utc)
        if self.end <= self.start:
            raise ValueError(f"empty data interval: end {self.end} is not after start {self.start}")
        for name in ("start", "end"):
            if getattr(self, name).time() != time(0):
                # Partitions are UTC days and each run owns the days of its interval: an
                # interval that splits a day would let two runs overwrite each other's rows.
                raise ValueError(
                    f"data interval {self} does not start and end at midnight UTC; Aisle "
                    "partitions by UTC day, so schedules must cover whole days (e.g. @daily, "
                    "@weekly, '0 0 * * 4')"
                )

    @classmethod
    def parse(cls, start: str | date | datetime, end: str | date | datetime) -> Interval:
        return cls(_as_datetime(start), _as_datetime(end))

    @property
    def key(self) -> str:
        """The partition key of the interval: its first day."""
        return self.start.date().isoformat()

    @property
    def as_of(self) -> str:
        """The key of a snapshot taken at the interval's end (attribute tables): two intervals
        that end on the same day see the same snapshot, whatever their length."""
        return self.end.date().isoformat()

    def partition_key(self, snapshot: bool) -> str:
        return self.as_of if snapshot else self.key

    def days(self) -> list[date]:
        """Every calendar day the interval touches."""
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def _as_datetime(value: str | date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return datetime.fromisoformat(value)


def partition_dir(zone_dir: Path, dataset: str, table: str, day: date | str) -> Path:
    key = day if isinstance(day, str) else day.isoformat()
    return zone_dir / dataset / table / f"date={key}"


def stream_partition_dir(raw_dir: Path, dataset: str, day: date | str) -> Path:
    """Where the event stream's consumer appends one day's interactions (features.stream): the
    ETL of any interval reads the days it covers from here beside what was landed."""
    key = day if isinstance(day, str) else day.isoformat()
    return raw_dir / dataset / "interactions" / "stream" / f"date={key}"


def list_partitions(zone_dir: Path, dataset: str, table: str) -> list[Path]:
    root = zone_dir / dataset / table
    return sorted(p for p in root.glob("date=*") if p.is_dir()) if root.exists() else []
