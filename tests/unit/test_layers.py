"""The one-way floors (pyproject `[tool.importlinter]`) hold on the code, and a wrong import
breaks them: the contracts are checked on a copy of the packages with one arrow pointing up."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "features", "training", "serving", "monitoring", "aisle", "dags", "plugins")
FLOORS, MODELS = "One-way floors", "Models stand alone"  # the contracts' names
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """`lint-imports` over the packages under `tree` (its folder first on the path)."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and the contracts, importable from `tmp_path`."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold_on_the_code(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# (module, the import added to it, the contract it breaks, who may not import whom)
WRONG_IMPORTS = [
    ("core/settings/fields.py", "import features.storage", FLOORS, "core", "features"),
    ("features/etl.py", "from training import tracking", FLOORS, "features", "training"),
    ("training/gate.py", "import serving.stats", FLOORS, "training", "serving"),
    ("serving/gateway.py", "import aisle.stack", FLOORS, "serving", "aisle"),
    ("monitoring/drift.py", "import serving.slots", FLOORS, "monitoring", "serving"),
    ("aisle/loop.py", "import dags.ingest", FLOORS, "aisle", "dags"),
    ("training/pricing/model.py", "import training.recommender.model", MODELS,
     "training.pricing", "training.recommender"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("module", "wrong_import", "broken", "importer", "imported"), WRONG_IMPORTS
)
def test_an_import_against_the_floors_breaks_a_contract(
    tree: Path, module: str, wrong_import: str, broken: str, importer: str, imported: str
) -> None:
    path = tree / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # against the floors\n")
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout
    assert f"{broken} BROKEN" in result.stdout, result.stdout
    assert "Contracts: 1 kept, 1 broken." in result.stdout
    assert f"{importer} is not allowed to import {imported}" in result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout
