"""Library code leaves the process environment alone: Feast's store and definitions are built from
the settings passed in (features.store), Airflow's variables are computed and handed to the
child process that needs them (aisle.airflow_env, a stack's components, `aisle airflow`), and
Airflow run in this process sees them for a block only (`airflow_env.configured`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aisle import airflow_env
from aisle.cli import app
from core.settings import Settings
from features import store

SCRIPTS = str(Path(sys.executable).parent)  # where this installation's `airflow` lives


@pytest.fixture
def relative(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's settings with a relative data folder (`data`, in the working directory), so
    that where Feast looks is decided by the settings, not by a variable of the session's.

    The modules are imported first: some libraries set variables of their own when first
    imported (feast.metrics' PROMETHEUS_MULTIPROC_DIR, pandera's SPARK_LOCAL_IP), which is not
    what these tests measure."""
    import feast.feature_store  # noqa: F401

    import features.feature_repo.definitions  # noqa: F401

    monkeypatch.chdir(settings.data_dir.parent)
    return settings.model_copy(update={"data_dir": Path("data")})


def test_the_feature_store_is_configured_from_the_settings_alone(relative):
    before = dict(os.environ)
    fs = store.feature_store(relative)
    assert dict(os.environ) == before
    absolute = relative.data_dir.resolve()
    assert os.environ["AISLE_DATA_DIR"] != str(absolute)  # the session's folder, not this one
    assert fs.config.registry.path == str(absolute / "feast" / "registry.db")
    assert fs.config.online_store.path == str(absolute / "feast" / "online_store.db")


def test_the_feast_definitions_read_the_settings_feature_tables(relative):
    before = dict(os.environ)
    objects = store.definitions(relative)
    assert dict(os.environ) == before
    sources = [o.batch_source.path for o in objects if getattr(o, "batch_source", None)]
    tables = str(relative.data_dir.resolve() / "features")
    # the live session's push source keeps its (unwritten) offline copy with the stream's state
    session = str(relative.data_dir.resolve() / "events" / "session")
    assert sources and all(path.startswith((tables, session)) for path in sources)
    assert sum(path.startswith(session) for path in sources) == 1


def test_airflow_environment_is_computed_not_exported(settings, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    before = dict(os.environ)
    env = airflow_env.subprocess_env(settings)
    assert dict(os.environ) == before
    assert env["PATH"] == os.pathsep.join([SCRIPTS, "/usr/bin", "/bin"])
    assert env["AISLE_DATA_DIR"] == str(settings.data_dir.resolve())
    assert env["AIRFLOW_HOME"] == str(airflow_env.airflow_home(settings))
    assert env["AIRFLOW__CORE__FERNET_KEY"]  # the keys every Airflow process must share


def test_airflow_run_here_sees_the_settings_for_the_block_only(settings, monkeypatch):
    """`configured` is for Airflow run in this process (replays, DAG tests); PATH only matters to
    a child's `airflow`; after the block the environment is what it was."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("AISLE_GATEWAY_PORT", raising=False)
    before = dict(os.environ)
    with airflow_env.configured(settings) as values:
        assert os.environ["PATH"] == "/usr/bin:/bin"
        assert os.environ["AISLE_DATA_DIR"] == str(settings.data_dir.resolve())
        assert os.environ["AISLE_GATEWAY_PORT"] == values["AISLE_GATEWAY_PORT"]
    assert dict(os.environ) == before


def test_migrating_airflow_s_database_and_a_stack_s_environment_write_nothing_here(settings):
    from aisle import stack

    before = dict(os.environ)
    airflow_env.migrate_db(settings)
    _, env = stack.stack_env(settings)
    assert dict(os.environ) == before
    assert env["AISLE_DATA_DIR"] == str(settings.data_dir.resolve())
    assert env["AISLE_ADMIN_TOKEN"] and "AISLE_ADMIN_TOKEN" not in os.environ
    assert (airflow_env.airflow_home(settings) / "airflow.db").exists()


def test_the_airflow_command_hands_its_environment_to_the_child(settings, monkeypatch):
    called = {}

    def call(command: list[str], env: dict[str, str]) -> int:
        called.update(command=command, env=env)
        return 0

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(subprocess, "call", call)
    before = dict(os.environ)
    args = ["airflow", "version", "--data-dir", str(settings.data_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert dict(os.environ) == before
    assert called["command"] == [os.path.join(SCRIPTS, "airflow"), "version"]
    assert called["env"]["PATH"].split(os.pathsep)[0] == SCRIPTS
    assert called["env"]["AISLE_DATA_DIR"] == str(settings.data_dir.resolve())


def test_a_child_does_not_inherit_feast_s_metrics_folder(settings, monkeypatch):
    """Feast sets prometheus_client's multiprocess folder when imported; serving slots, the
    gateway and the stack's components started from that process must not write into it."""
    from core.processes import NOT_INHERITED, child_environment

    for name in NOT_INHERITED:
        monkeypatch.setenv(name, "/tmp/feast-metrics-of-the-parent")
    for env in (airflow_env.subprocess_env(settings), child_environment({"AISLE_X": "1"})):
        assert not set(NOT_INHERITED) & set(env)
    assert child_environment({"AISLE_X": "1"}, {"AISLE_X": "2"})["AISLE_X"] == "2"
    assert child_environment()["PATH"] == os.environ["PATH"]
