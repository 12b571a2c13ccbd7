"""The extra links on task pages: which URL each task's result leads to (aisle.console)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aisle.console import audit_link, file_url, mlflow_link, report_link, timeline_link


@pytest.fixture
def console_settings(settings):
    return settings.model_copy(update={"airflow_port": 8080, "mlflow_port": 5000})


def test_a_gate_decision_links_to_its_model_version(console_settings):
    decision = {"model": "pricing", "version": "4", "verdict": "passed", "passed": True}
    assert (
        mlflow_link(decision, console_settings)
        == "http://127.0.0.1:5000/#/models/pricing/versions/4"
    )


def test_reports_link_through_the_api_server_and_only_inside_the_data_folder(console_settings):
    data = console_settings.data_dir.resolve()
    drift = [{"model": "recommender", "report": str(data / "monitoring/recommender/x/report.html")}]
    assert report_link(drift, console_settings) == (
        "http://127.0.0.1:8080/aisle/files/monitoring/recommender/x/report.html"
    )
    training_set = str(data / "training/pricing/orange_juice/w/training_set.parquet")
    assert report_link(training_set, console_settings).endswith(
        "/aisle/files/training/pricing/orange_juice/w/validation.html"
    )
    assert file_url(Path("/etc/passwd"), console_settings) is None
    assert report_link({"version": "3"}, console_settings) is None  # nothing to link: no button
    drift[0]["timeline"] = str(data / "monitoring/recommender/drift_timeline.html")
    assert timeline_link(drift, console_settings) == (
        "http://127.0.0.1:8080/aisle/files/monitoring/recommender/drift_timeline.html"
    )
    assert timeline_link({"version": "3"}, console_settings) is None


def test_a_promotion_links_to_the_audit_entries_of_its_versions(console_settings):
    outcomes = [{"model": "recommender", "version": "2", "result": "promoted"},
                {"model": "pricing", "version": "5", "result": "rolled_back"}]  # fmt: skip
    assert audit_link(outcomes, console_settings) == (
        "http://127.0.0.1:8080/aisle/audit?model=recommender&model=pricing&version=2&version=5"
    )
    assert audit_link(None, console_settings) is None
