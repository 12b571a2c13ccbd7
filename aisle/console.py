"""The Airflow UI as Aisle's console: extra links on task pages, and the files they open.

Task pages get four links, computed in the API server from the task's return value (XCom):

    MLflow          the run a task trained or checked drift in, or the model version it
                    registered or gated (the MLflow UI, `AISLE_MLFLOW_PORT`)
    Report          the Evidently report of a drift check, or the validation report of a
                    training set (served below, behind Airflow's sign-in)
    Audit entry     the promotion audit log's entries of the versions a promote task handled
    Timeline        a drift check's monitoring timeline: drift against calibrated thresholds,
                    realised performance against its band, retrains with their reasons

The plugin in `plugins/aisle_console.py` only registers them. The files are served by a small
FastAPI app mounted on the API server at `/aisle`, which accepts Airflow's own session (the
`_token` cookie or a bearer token) and serves nothing outside the data folder's report folders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from core.settings import Settings, get_settings

MOUNT = "/aisle"
REPORT_ZONES = ("monitoring", "training")  # the only folders /aisle/files serves from


def task_result(ti_key: Any) -> Any:
    """The return value of the task instance `ti_key` (read in the API server, from the DB)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.execute(
            XComModel.get_many(
                run_id=ti_key.run_id,
                key="return_value",
                dag_ids=ti_key.dag_id,
                task_ids=ti_key.task_id,
                map_indexes=ti_key.map_index,
            ).with_only_columns(XComModel.value)
        ).first()
    if row is None:
        return None
    value = row[0]
    while isinstance(value, str | bytes):  # stored as JSON (text, in some databases twice)
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


def _items(result: Any) -> list[dict[str, Any]]:
    """A task's result as a list of dicts (drift checks and promotions return lists)."""
    if isinstance(result, dict):
        return [result]
    if isinstance(result, list):
        return [r for r in result if isinstance(r, dict)]
    return []


def mlflow_link(result: Any, settings: Settings) -> str | None:
    """The MLflow UI page of the task's run or model version."""
    base = settings.mlflow_url
    for item in _items(result):
        run_id = item.get("mlflow_run_id") or item.get("run_id")
        if run_id:
            return f"{base}/#/experiments/{_experiment_of(run_id, settings)}/runs/{run_id}"
        model = item.get("registered_model") or item.get("model")
        if model and item.get("version") and "verdict" in item:
            return f"{base}/#/models/{model}/versions/{item['version']}"
    return None


def _experiment_of(run_id: str, settings: Settings) -> str:
    from mlflow import MlflowClient

    from training.tracking import point_at_store

    point_at_store(settings)
    return MlflowClient().get_run(run_id).info.experiment_id


def report_link(result: Any, settings: Settings) -> str | None:
    """The report the task wrote: a drift check's Evidently report, a training set's
    validation report (beside the set, which the validate task returns)."""
    for item in _items(result):
        if item.get("report"):
            return file_url(Path(item["report"]), settings)
    if isinstance(result, str) and result.endswith(".parquet"):
        return file_url(Path(result).parent / "validation.html", settings)
    return None


def file_url(path: Path, settings: Settings) -> str | None:
    root = settings.data_dir.resolve()
    try:
        relative = path.resolve().relative_to(root)
    except ValueError:
        return None
    return f"{settings.airflow_url}{MOUNT}/files/{quote(relative.as_posix())}"


def timeline_link(result: Any, settings: Settings) -> str | None:
    """The monitoring timeline the drift check redrew (drift_timeline.html)."""
    for item in _items(result):
        if item.get("timeline"):
            return file_url(Path(item["timeline"]), settings)
    return None


def audit_link(result: Any, settings: Settings) -> str | None:
    """The audit entries of the versions a promote task handled."""
    outcomes = [i for i in _items(result) if i.get("result") and i.get("version")]
    if not outcomes:
        return None
    pairs = [("model", o["model"]) for o in outcomes] + [
        ("version", o["version"]) for o in outcomes
    ]
    query = urlencode(pairs)
    return f"{settings.airflow_url}{MOUNT}/audit?{query}"


def operator_links() -> list[Any]:
    """The four links, as Airflow operator links (global: every task gets them; a task whose
    result has nothing to link to shows none)."""
    from airflow.sdk import BaseOperatorLink

    def make(link_name: str, compute):
        class Link(BaseOperatorLink):
            name = link_name

            def get_link(self, operator: Any, *, ti_key: Any) -> str:
                try:
                    return compute(task_result(ti_key), get_settings()) or ""
                except Exception:  # a link must never break the task page
                    return ""

        Link.__name__ = Link.__qualname__ = link_name.replace(" ", "") + "Link"
        return Link()

    return [
        make("MLflow", mlflow_link),
        make("Report", report_link),
        make("Audit entry", audit_link),
        make("Timeline", timeline_link),
    ]


def console_app():
    """The FastAPI app behind the links: reports from the data folder, audit entries."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends, FastAPI, HTTPException, Query
    from fastapi.responses import FileResponse, JSONResponse

    app = FastAPI(title="Aisle console", dependencies=[Depends(get_user)])

    @app.get("/files/{path:path}")
    def report(path: str) -> FileResponse:
        settings = get_settings()
        root = settings.data_dir.resolve()
        target = (root / path).resolve()
        allowed = any(target.is_relative_to(root / zone) for zone in REPORT_ZONES)
        if not allowed or target.suffix not in (".html", ".json", ".png") or not target.is_file():
            raise HTTPException(404, f"no report at {path}")
        return FileResponse(target)

    @app.get("/audit")
    def audit(
        model: list[str] = Query(default=[]), version: list[str] = Query(default=[])
    ) -> JSONResponse:
        from core.audit import AuditLog

        wanted = set(zip(model, version, strict=False))
        entries = [
            e
            for e in AuditLog(get_settings()).entries()
            if (e["model"], str(e.get("version"))) in wanted
        ]
        return JSONResponse(entries)

    return app
