"""An async load generator (aiohttp): `concurrency` clients, each sending its next request as
soon as the last was answered, for `seconds`. Every answer is recorded (time, path, status,
latency, model version), so a test can count failed requests across a promotion to the one, and
a benchmark can report p50/p99 and throughput. Used by the load tests and benchmarks/serving.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

Request = tuple[str, dict]  # (path, JSON body)


@dataclass(frozen=True)
class Answer:
    at: float
    path: str
    status: int  # 0: no answer (connection refused, reset, timeout)
    ms: float
    version: str | None


@dataclass
class Run:
    answers: list[Answer]
    seconds: float

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 0 or a.status >= 500]

    def summary(self) -> dict:
        ms = np.array([a.ms for a in self.answers if 0 < a.status < 500]) if self.answers else []
        return {
            "requests": len(self.answers),
            "failed": len(self.failed),
            "per_second": round(len(self.answers) / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        }


def cycle(requests: list[Request]) -> Callable[[], Request]:
    source: Iterator[Request] = itertools.cycle(requests)
    return lambda: next(source)


async def _client(session, base, next_request, stop_at, answers, headers, until) -> None:
    while time.perf_counter() < stop_at and not (until and until()):
        path, body = next_request()
        started = time.perf_counter()
        version = None
        try:
            async with session.post(base + path, json=body, headers=headers) as response:
                payload = await response.read()
                status = response.status
            if status == 200:
                version = _version(payload)
        except (TimeoutError, ClientError, OSError):
            status = 0
        answers.append(
            Answer(time.time(), path, status, (time.perf_counter() - started) * 1000, version)
        )


def _version(payload: bytes) -> str | None:
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if isinstance(data, list):
        data = data[0] if data else {}
    return data.get("model_version") if isinstance(data, dict) else None


async def load(
    base: str,
    next_request: Callable[[], Request],
    seconds: float,
    concurrency: int = 8,
    api_key: str | None = None,
    until: Callable[[], bool] | None = None,
) -> Run:
    """`concurrency` clients for `seconds` at most, or until `until()` turns true."""
    answers: list[Answer] = []
    headers = {"X-API-Key": api_key} if api_key else {}
    connector = TCPConnector(limit=concurrency)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=30)) as session:
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(
            *(
                _client(session, base, next_request, stop_at, answers, headers, until)
                for _ in range(concurrency)
            )
        )
        return Run(answers, time.perf_counter() - started)


def run_load(base: str, next_request: Callable[[], Request], seconds: float, **kwargs) -> Run:
    return asyncio.run(load(base, next_request, seconds, **kwargs))
