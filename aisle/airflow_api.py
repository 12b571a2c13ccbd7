"""A small client of Airflow's REST API (v2), signed in as the simple auth manager's `admin`
with the password Airflow generated into AIRFLOW_HOME. What the loop and the demo ask Airflow:
create a backfill, list DAG runs and task instances."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import httpx

from core.settings import Settings


class AirflowApiError(RuntimeError):
    pass


class AirflowApi:
    def __init__(self, settings: Settings, user: str = "admin", timeout_s: float = 30.0) -> None:
        from .stack import airflow_password_file

        self.base = settings.airflow_url
        path = airflow_password_file(settings)
        if not path.exists():
            raise AirflowApiError(f"{path} is missing: start Airflow first (`aisle stack up`)")
        password = json.loads(path.read_text())[user]
        token = httpx.post(
            f"{self.base}/auth/token",
            json={"username": user, "password": password},
            timeout=timeout_s,
        )
        if token.status_code not in (200, 201):
            raise AirflowApiError(f"sign-in refused: {token.status_code} {token.text[:200]}")
        self.http = httpx.Client(
            base_url=f"{self.base}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=timeout_s,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        # SQLite allows one writer: the API may meet the scheduler's lock; retried briefly.
        for attempt in range(10):
            response = self.http.request(method, path, **kwargs)
            if response.status_code < 500 or attempt == 9:
                break
            time.sleep(2)
        if response.status_code >= 400:
            raise AirflowApiError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def backfill(self, dag_id: str, start: datetime, end: datetime) -> dict[str, Any]:
        """Ask the scheduler to run `dag_id` for every data interval starting in [start, end]."""
        return self._call(
            "POST",
            "/backfills",
            json={
                "dag_id": dag_id,
                "from_date": start.isoformat(),
                "to_date": end.isoformat(),
                "max_active_runs": 1,
                "reprocess_behavior": "none",
            },
        )

    def runs(self, dag_id: str = "~") -> list[dict[str, Any]]:
        """Every DAG run of `dag_id` (~: of every DAG), oldest first."""
        found, offset = [], 0
        while True:
            page = self._call(
                "GET",
                f"/dags/{dag_id}/dagRuns",
                params={"limit": 100, "offset": offset, "order_by": "run_after"},
            )
            found += page["dag_runs"]
            offset += len(page["dag_runs"])
            if not page["dag_runs"] or offset >= page["total_entries"]:
                return found

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        page = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return page["task_instances"]

    def pause(self, dag_id: str, paused: bool) -> None:
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})
