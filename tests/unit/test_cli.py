"""The `aisle` command: a readable manual, clear errors, the same functions the DAGs call."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aisle.cli import app
from aisle.cli import common as cli

runner = CliRunner()


def etl_args(export, data_dir) -> list[str]:
    """`aisle etl interactions` of one day of a shop's file."""
    return ["etl", "interactions", "--source", str(export), "--start", "2024-03-01",
            "--end", "2024-03-02", "--data-dir", str(data_dir)]  # fmt: skip


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(cli.console, "width", 250)  # tables and messages are not wrapped


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], ["etl", "replay", "data", "demo", "summary"]),
        (["etl", "--help"], ["canonical schema", "AISLE_INTERACTIONS_SOURCE", "quarantined"]),
        (["data", "fetch", "--help"], ["recbole", "r-cran-bayesm"]),
        (["replay", "--help"], ["AISLE_INTERACTIONS_SCHEDULE", "features DAG"]),
        (["features", "--help"], ["build", "apply", "materialize", "online"]),
        (["train", "recommender", "--help"], ["protocol B", "challenger", "--epochs"]),
        (["recommend", "--help"], ["cold-start", "--category"]),
    ],
)
def test_help_reads_like_a_manual(args, expected):
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for phrase in expected:
        assert phrase in text


def test_etl_of_a_shops_file_prints_the_reconciled_summary(tmp_path):
    export = tmp_path / "events.csv"
    export.write_text(
        "user_id,item_id,timestamp,event_type,price\n"
        "u1,i1,2024-03-01T10:00:00Z,purchase,5\n"
        "u1,i1,2024-03-01T10:00:00Z,purchase,5\n"
        "u2,i2,2024-03-01T11:00:00Z,purchase,-5\n"
    )
    args = etl_args(export, tmp_path / "data")
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "3 in → 1 curated, 1 quarantined (price_not_positive 1), 1 duplicates removed" in (
        " ".join(result.output.split())
    )
    summary = runner.invoke(
        app, ["summary", "--data-dir", str(tmp_path / "data")], terminal_width=200
    )
    row = next(line for line in summary.output.splitlines() if "events" in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == [
        "events",
        "interactions",
        "1",
        "2024-03-01",
        "2024-03-01",
        "3",
        "1",
        "1",
        "1",
        "yes",
    ]


def test_an_unreadable_file_is_a_clear_error_and_exit_code_1(tmp_path):
    export = tmp_path / "events.csv"
    export.write_text("user,item\nu1,i1\n")
    args = etl_args(export, tmp_path / "data")
    result = runner.invoke(app, args, terminal_width=300)
    assert result.exit_code == 1
    assert "missing required column(s) user_id, item_id" in " ".join(result.output.split())


def test_unknown_flow_is_rejected(tmp_path):
    args = [
        "etl",
        "orders",
        "--start",
        "2024-03-01",
        "--end",
        "2024-03-02",
        "--data-dir",
        str(tmp_path),
    ]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 1
    assert "unknown flow 'orders'" in result.output


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["features", "apply"], 0, "definitions applied"),
        (["features", "build", "sales", "--start", "2024-01-01", "--end", "2024-01-08"], 1,
         "no curated sales"),
        (["features", "build"], 2, "Missing argument"),
    ],
)  # fmt: skip
def test_the_installed_command_keeps_exit_codes_and_ends_quietly(tmp_path, args, code, expected):
    """`aisle` exits with the command's code and without the native libraries' teardown noise."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    aisle = Path(sys.executable).parent / "aisle"
    env = {**os.environ, "AISLE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    done = subprocess.run([str(aisle), *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == code, done.stdout + done.stderr
    assert expected in " ".join((done.stdout + done.stderr).split())
    assert "leaked" not in done.stderr


def test_training_without_data_is_a_clear_error(tmp_path):
    args = ["train", "recommender", "--end", "1998-04-23", "--data-dir", str(tmp_path)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 1
    assert "no curated movielens interactions" in result.output
    assert "run the ingest first" in result.output


def test_recommend_without_a_registered_model_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["recommend", "--data-dir", str(tmp_path)], terminal_width=300)
    assert result.exit_code == 1
    assert "no recommender@challenger" in result.output


def test_demo_fetches_the_data_then_refuses_a_loop_without_live_intervals(
    prepared_copy, monkeypatch
):
    """`aisle demo` runs its first steps (the data fetch, the plan) before any stack starts.
    The sources are the session's, prepared with its small simulator: the same configuration
    here, so the fetch finds them prepared and rewrites nothing."""
    monkeypatch.setenv("AISLE_SIMULATOR", json.dumps(prepared_copy.simulator))
    before = (prepared_copy.sources_dir / "simulator" / "manifest.json").stat().st_mtime_ns
    args = ["demo", "--live-intervals", "0", "--data-dir", str(prepared_copy.data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "at least one live interval" in result.output
    assert (prepared_copy.sources_dir / "simulator" / "manifest.json").stat().st_mtime_ns == before
