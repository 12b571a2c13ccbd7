"""Shared fixtures. Airflow reads its configuration at import, so its environment (a private
AIRFLOW_HOME for this test session) is set here, before any test module imports it."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

# `make test` runs the suite on pytest-xdist workers side by side: each worker's numeric
# libraries get a share of the cores (threads beyond them spin against each other), and every
# stack a test starts inherits it.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="aisle-tests-"))
os.environ["AISLE_DATA_DIR"] = str(_SESSION_DIR / "data")
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
for _name in [n for n in os.environ if n.startswith("AISLE_") and n != "AISLE_DATA_DIR"]:
    del os.environ[_name]  # a developer's own settings must not leak into the tests

from aisle import airflow_env  # noqa: E402
from core.schemas import table_spec  # noqa: E402
from core.settings import Settings, get_settings  # noqa: E402
from features.storage import Interval, partition_dir  # noqa: E402

airflow_env.configure(get_settings())


# Tests that share something beyond their own folders run on one xdist worker, one after
# another: the serving cluster listens on fixed ports; the host's PostgreSQL and Redis are
# restarted and stopped by the production profile's fault tests. Every other module is a group
# of its own, so its module fixtures (a stack, a loop) are built once. (xdist's own
# `--dist loadgroup` cannot rename pytest 9's node ids, so the groups are this scheduler's.)
SHARED_GROUPS = {
    "tests/serving/test_cluster.py": "serving-cluster",
    "tests/serving/test_schemathesis.py": "serving-cluster",
    "tests/serving/test_events.py": "serving-cluster",
    "tests/serving/test_experiments.py": "serving-cluster",
    "tests/integration/test_production.py": "host-services",
    "tests/unit/test_store.py": "host-services",
    "tests/unit/test_pricing_features.py": "host-services",
}
# The fixtures that reach a shared server: a module using one must be listed above.
SHARED_FIXTURES = {
    "cluster": "serving-cluster",
    "production_services": "host-services",
    "production": "host-services",  # tests/integration/test_production.py's running stack
}
# The longest groups start first (`--no-loadscope-reorder` keeps this order), so the workers
# finish together rather than one waiting on a stack started last.
LONGEST_FIRST = (
    "host-services",
    "tests/integration/test_loop.py",
    "serving-cluster",
    "tests/dags/test_drift_monitor_dag.py",
    "tests/unit/test_recommender_protocol_a.py",
)


def worker_group(nodeid: str) -> str:
    module = nodeid.split("::")[0]
    return SHARED_GROUPS.get(module, module)


def pytest_xdist_make_scheduler(config: pytest.Config, log):  # `make test`'s scheduler
    from xdist.scheduler import LoadScopeScheduling

    class SharedServerScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    return SharedServerScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(item.fixturenames) & set(SHARED_FIXTURES):
            if worker_group(item.nodeid) != SHARED_FIXTURES[fixture]:
                raise pytest.UsageError(
                    f"{item.nodeid} uses the shared fixture {fixture!r}: add its module to "
                    f"SHARED_GROUPS as {SHARED_FIXTURES[fixture]!r} (tests/conftest.py)"
                )
    if config.getoption("dist", "no") != "no":

        def rank(item: pytest.Item) -> int:
            group = worker_group(item.nodeid)
            return LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)

        items.sort(key=rank)  # stable: within a group, the order of collection


@pytest.fixture(scope="module")
def module_env():
    """Environment variables a module fixture sets (a stack's Airflow home and log ports), put
    back after the module. Tests set theirs with `monkeypatch`, DAGs run here get their settings
    through `airflow_env.configured`; library code writes none."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data folder is private to the test."""
    return get_settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def prepared_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A data folder of the session's own, over the built-in sources prepared once for the
    whole run: xdist's workers share one sources folder, the first to arrive prepares it
    (`prepare` skips what is prepared; the lock keeps the others waiting meanwhile)."""
    from filelock import FileLock

    from features.sources.prepare import prepare

    run_dir = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_dir = run_dir.parent  # the workers' folders sit side by side in it
    simulator = {"events": 20_000, "users": 500, "items": 200, "days": 28}
    shared = get_settings(data_dir=run_dir / "prepared-sources" / "data", simulator=simulator)
    with FileLock(str(run_dir / "prepared-sources.lock")):
        for name in ("movielens", "orange_juice", "simulator"):
            prepare(shared, name)
    data_dir = tmp_path_factory.mktemp("prepared") / "data"
    data_dir.mkdir()
    (data_dir / "sources").symlink_to(shared.sources_dir.resolve())
    return shared.model_copy(update={"data_dir": data_dir})


DAY = Interval.parse("2024-03-01", "2024-03-02")


@pytest.fixture
def land_raw(settings: Settings) -> Callable[..., Path]:
    """Put a raw file into the landing zone as a shop's export would arrive."""

    def put(
        content: bytes | str,
        table: str = "interactions",
        name: str | None = None,
        interval: Interval = DAY,
        dataset: str = "shop",
    ) -> Path:
        snapshot = table_spec(table).time_column is None
        folder = partition_dir(settings.raw_dir, dataset, table, interval.partition_key(snapshot))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (name or f"{table}.csv")
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return put


@pytest.fixture
def prepared_copy(prepared_settings: Settings, tmp_path: Path) -> Settings:
    """Empty zones of its own, over the session's prepared sources (linked, not copied)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "sources").symlink_to(prepared_settings.sources_dir.resolve())
    return prepared_settings.model_copy(update={"data_dir": data_dir})


@pytest.fixture(scope="session")
def quick_training() -> dict[str, dict]:
    """The training configuration of the stacks the loop tests start (AISLE_TRAINING_CONFIG):
    one l2, one fold and one structure (the one the valid weeks choose on the whole of
    Dominick's) instead of tuning a grid, two ensemble members, 100 L-BFGS steps; a pricing
    model in seconds. What these tests prove is the loop (the scheduler's runs, the gate, the
    promotion), the same code at any size; the full configuration's quality is
    benchmarks/pricing.py's and tests/integration/test_pricing_simulator.py's."""
    return {
        "pricing": {
            "l2_grid": [30.0],
            "structures": ["pooled"],
            "valid_folds": 1,
            "members": 2,
            "max_iter": 100,
        }
    }


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_range(span: int = 1) -> int:
    """A port p with p..p+span-1 free (a stack's slots take base+1..base+4), drawn below the
    kernel's ephemeral range (32768 and up here): a port from that range can be taken by any
    outgoing connection on the machine before the server binds it, which failed a slot's start
    with EADDRINUSE. Drawn at random, so the two test workers rarely pick the same one, and
    below 28,000, where no test's fixed ports lie (18700s, 18800s, 28700s)."""
    import random

    for _ in range(200):
        port = random.randrange(20_000, 28_000 - span)
        if all(_bindable(port + i) for i in range(span)):
            return port
    raise RuntimeError("no free port range")


@pytest.fixture(scope="session")
def free_port() -> Callable[..., int]:
    return free_port_range


@pytest.fixture
def production_services() -> dict[str, str]:
    """The production profile's settings over the CI host's PostgreSQL and Redis.

    Skipped only on a developer's machine without the services; in CI (which starts them) a
    missing service is a failure, never a skip.
    """
    if not os.environ.get("CI") and not (_port_open(5432) and _port_open(6379)):
        pytest.skip("the production profile needs PostgreSQL (5432) and Redis (6379)")
    return {
        "profile": "production",
        "feast_registry_url": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "feast_redis": "127.0.0.1:6379",
    }
