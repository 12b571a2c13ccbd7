"""DAG files must not shadow the project's packages: Airflow puts the dags folder on sys.path."""

from __future__ import annotations

import pytest

from aisle import airflow_env

PACKAGES = {"aisle", "features", "training", "serving", "monitoring"}


@pytest.mark.parametrize("path", sorted((airflow_env.PROJECT_DIR / "dags").glob("*.py")))
def test_a_dag_file_is_not_named_like_a_package(path):
    assert path.stem not in PACKAGES
