"""Per-colour request records in memory: what the promotion's checks read (error rate, p99) for
any window of time, and what `aisle serve status` shows as traffic."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

KEEP = 200_000  # records per (model, colour, role): minutes of traffic at this machine's rate


@dataclass(frozen=True)
class Window:
    requests: int
    errors: int  # 5xx answers and requests the slot never answered
    client_errors: int  # 4xx: the caller's mistake, not the model's
    p50_ms: float | None
    p99_ms: float | None
    per_second: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict:
        return {**vars(self), "error_rate": self.error_rate}


class Stats:
    def __init__(self) -> None:
        self._records: dict[tuple[str, str, str], deque[tuple[float, int, float]]] = {}

    def record(self, model: str, colour: str, role: str, status: int, ms: float) -> None:
        key = (model, colour, role)
        if key not in self._records:
            self._records[key] = deque(maxlen=KEEP)
        self._records[key].append((time.time(), status, ms))

    def window(self, model: str, colour: str, role: str = "live", since: float = 0.0) -> Window:
        records = [r for r in self._records.get((model, colour, role), ()) if r[0] >= since]
        if not records:
            return Window(0, 0, 0, None, None, 0.0)
        status = np.array([r[1] for r in records])
        ms = np.array([r[2] for r in records])
        span = max(time.time() - max(since, records[0][0]), 1e-3)
        errors = int(((status >= 500) | (status == 0)).sum())
        client = int(((status >= 400) & (status < 500)).sum())
        p50, p99 = np.percentile(ms, [50, 99])
        return Window(len(records), errors, client, float(p50), float(p99), len(records) / span)
