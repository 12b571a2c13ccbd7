"""Aisle's Airflow plugin: extra links on task pages (MLflow, report, audit entry) and the
reports and audit entries they open, mounted at /aisle on the API server (aisle.console)."""

from typing import ClassVar

from airflow.plugins_manager import AirflowPlugin

from aisle.console import MOUNT, console_app, operator_links


class AisleConsolePlugin(AirflowPlugin):
    name = "aisle_console"
    global_operator_extra_links: ClassVar[list] = operator_links()
    fastapi_apps: ClassVar[list[dict]] = [
        {"app": console_app(), "url_prefix": MOUNT, "name": "Aisle reports"}
    ]
