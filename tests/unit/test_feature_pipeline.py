"""The features stage's ledger: every curated interval gets its features once, and again when
its data changes, whatever Asset events Airflow delivered."""

from __future__ import annotations

import os

import pytest

from features.etl import run_etl
from features.pipeline import intervals_to_process, pending_intervals, run_features
from features.storage import Interval

HEADER = "user_id,item_id,timestamp,event_type,price,quantity\n"
DAYS = [Interval.parse("2024-03-01", "2024-03-02"), Interval.parse("2024-03-02", "2024-03-03")]


def _as_request(interval: Interval) -> dict[str, str]:
    return {
        "flow": "interactions",
        "start": interval.start.isoformat(),
        "end": interval.end.isoformat(),
    }


@pytest.fixture
def shop(settings, land_raw, tmp_path):
    export = tmp_path / "shop.csv"
    export.write_text(HEADER)
    settings.interactions_source = str(export)
    for day in DAYS:
        land_raw(HEADER + f"u1,i1,{day.start:%Y-%m-%d}T10:00:00Z,view,,\n", interval=day)
        run_etl(settings, "shop", "interactions", day)
    return settings


def test_curated_intervals_wait_until_their_features_are_built(shop, land_raw):
    assert pending_intervals(shop) == [_as_request(d) for d in DAYS]
    run_features("interactions", DAYS[0].start, DAYS[0].end, shop)
    assert pending_intervals(shop) == [_as_request(DAYS[1])]
    run_features("interactions", DAYS[1].start, DAYS[1].end, shop)
    assert pending_intervals(shop) == []

    # new data for the first day: its features are due again
    land_raw(HEADER + "u2,i1,2024-03-01T11:00:00Z,view,,\n", interval=DAYS[0])
    summary = run_etl(shop, "shop", "interactions", DAYS[0])
    path = shop.runs_dir / "shop" / "interactions" / f"date={DAYS[0].key}.json"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))  # coarse clocks
    assert summary.curated == 1
    assert pending_intervals(shop) == [_as_request(DAYS[0])]


def test_a_run_processes_its_events_and_what_is_pending_once_each(shop):
    events = [_as_request(DAYS[1])]
    todo = intervals_to_process(events, params=None, pending=pending_intervals(shop))
    assert todo == [_as_request(d) for d in DAYS]
