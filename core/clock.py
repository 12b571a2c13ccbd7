"""Days and times as Aisle passes them around: aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, date, datetime

When = date | datetime | str


def as_utc(value: When) -> datetime:
    """A day or time as an aware UTC datetime (naive values are read as UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    elif not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
