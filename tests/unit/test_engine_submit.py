"""The Spark application's entry point (features/engines/submit.py), run in-process on DuckDB:
it reads its settings from the environment, as spark-submit's driver does, and writes what the
features DAG's in-process build task writes for the same interval."""

from __future__ import annotations

import json

import pytest

from features.engines import submit
from features.etl import run_etl
from features.pipeline import build_step
from features.storage import Interval

HEADER = "user_id,item_id,timestamp,event_type,price,quantity\n"
DAY = Interval.parse("2024-03-01", "2024-03-02")


@pytest.fixture
def shop(settings, land_raw, tmp_path, monkeypatch):
    """A curated day of a shop's export, and the environment a submitted driver inherits."""
    export = tmp_path / "shop.csv"
    export.write_text(HEADER)
    settings.interactions_source = str(export)
    land_raw(HEADER + "u1,i1,2024-03-01T10:00:00Z,view,,\nu2,i1,2024-03-01T11:00:00Z,view,,\n")
    run_etl(settings, "shop", "interactions", DAY)
    monkeypatch.setenv("AISLE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AISLE_INTERACTIONS_SOURCE", str(export))
    monkeypatch.setenv("AISLE_ENGINE", "duckdb")
    return settings


def test_the_entry_point_builds_the_intervals_it_is_given(shop, capsys):
    todo = [{"flow": "interactions", "start": "2024-03-01", "end": "2024-03-02"}]
    done = submit.main(["build", "--intervals", json.dumps(todo)])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == done
    (summary,) = done
    assert summary["dataset"] == "shop" and summary["interval"] == str(DAY)
    assert summary["partitions"] and all(n == 1 for n in summary["partitions"].values())
    written = sorted((shop.data_dir / "features" / "shop").glob("*/date=2024-03-01/*.parquet"))
    assert len(written) == len(summary["partitions"])

    # the same interval by flags, and by the function the DAG's in-process task calls
    assert (
        submit.main(
            ["build", "--flow", "interactions", "--start", "2024-03-01", "--end", "2024-03-02"]
        )
        == done
    )
    assert build_step("interactions", "2024-03-01", "2024-03-02", shop) == summary


def test_a_flow_without_its_interval_is_refused():
    with pytest.raises(SystemExit):
        submit.parse_args(["build", "--flow", "sales", "--start", "1990-06-14"])
    with pytest.raises(SystemExit):
        submit.parse_args(["build"])
