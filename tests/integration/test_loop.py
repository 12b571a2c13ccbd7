"""The closed loop, unattended, on the embedded default: `aisle stack up` on free ports, the
history of MovieLens and Dominick's bootstrapped, then Airflow's scheduler alone walks the last
two weeks of both timelines through ingest → features → drift → retrain → gate → promotion.
Then the console: extra links on task pages, and the UI itself in headless Chromium (Debian's
chromium, `make browser`), signed in with the generated password; screenshots are kept in
build/screenshots/.

The same module fixture serves every test here: the loop runs once (about five minutes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from aisle import airflow_env, loop, stack
from core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@pytest.fixture(scope="module")
def finished_loop(
    prepared_settings: Settings, tmp_path_factory, free_port, quick_training, module_env
):
    data_dir = tmp_path_factory.mktemp("loop") / "data"
    data_dir.mkdir()
    (data_dir / "sources").symlink_to(prepared_settings.sources_dir.resolve())
    module_env.setenv("AIRFLOW_HOME", str(data_dir / "airflow"))  # put back after the module
    module_env.setenv("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", str(free_port()))
    module_env.setenv("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", str(free_port()))
    settings = prepared_settings.model_copy(
        update={
            "data_dir": data_dir,
            "interactions_schedule": "@weekly",
            "training_config": quick_training,
            "airflow_port": free_port(),
            "mlflow_port": free_port(),
            "gateway_port": free_port(),
            "slot_port_base": free_port(span=5),
            "events": prepared_settings.events.model_copy(
                update={"broker_port": free_port(span=2), "consumer_port": free_port()}
            ),
            "promotion": prepared_settings.promotion.model_copy(
                update={"shadow_seconds": 3.0, "analysis_seconds": 5.0}
            ),
        }
    )
    # two weeks of MovieLens (a first recommender, then a blue-green one), one of Dominick's
    # (the pricing model trains for minutes on two cores; its blue-green path is the same code)
    plans = loop.plan(settings, live_intervals={"interactions": 2, "sales": 1})
    settings = loop.replay_settings(settings, plans)
    loop.bootstrap(settings, plans, on_step=lambda m: None)
    try:
        settings = stack.up(settings, on_step=lambda m: None)
        result = loop.run_live(settings, plans, timeout_s=1200)
        yield settings, loop.summary(settings, result)
    finally:
        stack.down(settings)


def test_the_scheduler_runs_the_loop_to_both_models_live(finished_loop):
    settings, done = finished_loop
    runs = done["runs"]
    assert all("failed" not in counts for counts in runs.values()), runs
    # the backfills: two weeks per flow, nothing else on the calendar (it ends with the replay)
    assert runs["ingest_interactions"] == {"success": 2}
    assert runs["ingest_sales"] == {"success": 1}
    for dag_id in ("features", "drift_monitor", "recommender_training", "pricing_training"):
        assert runs[dag_id].get("success", 0) >= 1, runs
    assert runs["promote_model"].get("success", 0) >= 1, runs

    # no champion before the loop: the first retrain was asked for, the model gated and promoted
    first = [d for d in done["drift"] if d["retrain"].startswith("no champion yet")]
    assert {d["model"] for d in first} == set(loop.MODELS), done["drift"]
    for model in loop.MODELS:
        champion = done["champions"][model]
        assert champion is not None and champion["metrics"], done["champions"]
        promoted = [p for p in done["promotions"] if p["model"] == model]
        assert promoted and promoted[-1]["step"] == "promoted", done["promotions"]
        assert promoted[-1]["version"] == champion["version"]

    # the first recommender went live on its own; a later one (when its gate passed) through
    # shadow traffic and the flip, while the shop's requests kept being answered
    recommender = [p for p in done["promotions"] if p["model"] == "recommender"]
    assert recommender[0]["previous_version"] is None
    assert all(p["previous_version"] for p in recommender[1:])
    statuses = {int(s) for by_status in done["traffic"].values() for s in by_status}
    assert 200 in statuses and statuses <= {200, 202, 503}, done["traffic"]  # 503: not live yet
    # its shoppers' views went onto the event stream, and every answer is in the answer log
    assert done["traffic"]["/events"].get("202", 0) > 0, done["traffic"]
    assert done["answer_log"]["logged"] == done["answer_log"]["answered"] > 0, done["answer_log"]
    # the closing summary shows what a shopper saw: named items with reasons, a quote in money
    recommend = done["samples"]["/recommend"]["answer"]
    assert recommend["items"] and all(i["reason"] for i in recommend["items"]), recommend
    from aisle.cli.stack import console, print_summary

    width, console.width = console.width, 400  # no wrapped cells
    try:
        with console.capture() as shown:
            print_summary(done)
    finally:
        console.width = width
    text = shown.get()
    assert "What a shopper saw" in text and recommend["items"][0]["reason"][:20] in text
    quote = done["samples"]["/price"]["answer"]
    assert f"${quote['price']:.2f}" in text, text

    # and the shop scores through the gateway with the champions
    gateway = settings.gateway_url
    recommended = httpx.post(f"{gateway}/recommend", json={"user_id": "1", "k": 5}, timeout=10)
    assert recommended.status_code == 200, recommended.text
    assert recommended.json()["model_version"] == done["champions"]["recommender"]["version"]
    assert len(recommended.json()["items"]) == 5
    price = httpx.post(f"{gateway}/price", json={"item_id": "1", "store_id": "2"}, timeout=10)
    assert price.status_code == 200, price.text
    assert price.json()["model_version"] == done["champions"]["pricing"]["version"]


@pytest.fixture(scope="module")
def api(finished_loop):
    from aisle.airflow_api import AirflowApi

    settings, _ = finished_loop
    return AirflowApi(settings)


def _task_links(api, dag_id: str, task_id: str) -> dict[str, str | None]:
    run = next(r for r in reversed(api.runs(dag_id)) if r["state"] == "success")
    path = f"/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}/taskInstances/{task_id}"
    return api._call("GET", f"{path}/links")["extra_links"]


def test_task_pages_link_to_mlflow_the_report_and_the_audit(finished_loop, api):
    settings, _ = finished_loop
    check = _task_links(api, "drift_monitor", "check")
    assert check["MLflow"].startswith(f"{settings.mlflow_url}/#/experiments/")
    assert check["Report"].startswith(f"{settings.airflow_url}/aisle/files/monitoring/")
    assert check["Timeline"].endswith("/drift_timeline.html")
    trained = _task_links(api, "recommender_training", "train")
    assert "/runs/" in trained["MLflow"]
    validated = _task_links(api, "pricing_training", "validate")
    assert validated["Report"].endswith("/validation.html")
    promoted = _task_links(api, "promote_model", "promote")
    assert promoted["Audit entry"].startswith(f"{settings.airflow_url}/aisle/audit?")

    # the links open: behind Airflow's sign-in, and the run's MLflow page exists
    report = httpx.get(check["Report"], headers=api.http.headers, timeout=30)
    assert report.status_code == 200 and "<html" in report.text.lower()
    assert httpx.get(check["Report"], timeout=30).status_code in (401, 403)  # not signed in
    audit = httpx.get(promoted["Audit entry"], headers=api.http.headers, timeout=30).json()
    assert {e["step"] for e in audit} >= {"start", "promoted"}
    run_id = trained["MLflow"].rsplit("/", 1)[1]
    found = httpx.get(f"{settings.mlflow_url}/api/2.0/mlflow/runs/get?run_id={run_id}", timeout=30)
    assert found.status_code == 200


def test_the_airflow_ui_in_headless_chromium(finished_loop, api):
    """Sign in through the form with the generated password, see the DAG list, open a finished
    promotion run; a screenshot of each page is kept."""
    import playwright.sync_api as playwright  # a dev dependency: missing is a failure

    if not shutil.which("chromium") and not Path("/usr/bin/chromium").exists():
        pytest.fail("Debian's chromium is missing: run `make browser`")
    settings, _ = finished_loop
    base = settings.airflow_url
    password = json.loads(stack.airflow_password_file(settings).read_text())["admin"]
    run = next(r for r in reversed(api.runs("promote_model")) if r["state"] == "success")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    expect = playwright.expect
    expect.set_options(timeout=30_000)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(30_000)
        page.goto(f"{base}/dags")
        page.wait_for_url("**/auth/login**")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/dags")
        for dag_id in loop.DAG_ORDER:
            expect(page.locator(f'a[href="/dags/{dag_id}"]').first).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "airflow-dags.png"), full_page=True)

        page.goto(f"{base}/dags/promote_model/runs/{quote(run['dag_run_id'], safe='')}")
        header = page.get_by_test_id("header-card")
        expect(header).to_contain_text(run["dag_run_id"])
        expect(header.get_by_test_id("state-badge")).to_have_text("Success")
        expect(page.get_by_test_id("table-cell-state").first).to_have_text("Success")  # loaded
        page.screenshot(path=str(SCREENSHOTS / "airflow-promotion-run.png"), full_page=True)
        browser.close()
    assert (SCREENSHOTS / "airflow-dags.png").stat().st_size > 10_000


def test_no_secret_reaches_a_log(finished_loop):
    """The admin token, the UI's password and Airflow's keys appear in no log of the stack,
    of Airflow's tasks or of the serving cluster."""
    settings, _ = finished_loop
    home = airflow_env.airflow_home(settings)
    secrets = [
        stack.admin_token(settings),
        *json.loads(stack.airflow_password_file(settings).read_text()).values(),
        *json.loads((home / "aisle-secrets.json").read_text()).values(),
    ]
    logs = [
        *(settings.stack_dir / "logs").rglob("*.log"),
        *(home / "logs").rglob("*.log"),
        *(settings.serving_dir / "logs").rglob("*.log"),
    ]
    assert len(logs) > 20  # every component's, every task's
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [s[:4] + "…" for s in secrets if s in text]
        assert not leaked, f"{path} holds a secret: {leaked}"
