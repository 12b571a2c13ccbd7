"""The cluster under load, for real: BentoML slots as processes, the gateway, the registry and
the online store of a sandbox world. Promotion and rollback in the middle of sustained load
lose no request; a challenger that errors or answers garbage never takes traffic; one that turns
slow after the flip is rolled back inside the analysis window; a killed slot is failed over;
malformed requests are 4xx with a message, never 5xx."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import httpx
import pytest

from core.audit import AuditLog
from serving.admin import AdminRefused, GatewayAdmin
from serving.cluster import up
from serving.loadgen import cycle, run_load
from serving.promotion import Promoter
from serving.sandbox import fit_recommender, register
from serving.slots import LocalSlots

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def promoter(cluster):
    return Promoter(cluster, LocalSlots(cluster), GatewayAdmin(cluster), AuditLog(cluster, "test"))


@pytest.fixture(scope="module")
def traffic(world):
    """Known users, an unknown one, and quotes for every priced pair."""
    requests = [("/recommend", {"user_id": u, "k": 10}) for u in world.users[:100]]
    requests += [("/recommend", {"user_id": "first-visit", "k": 5})]
    requests += [("/price", {"item_id": i, "store_id": s}) for i, s in world.priced]
    return requests


def post(settings, path, body, key):
    headers = {"X-API-Key": key} if key else {}
    return httpx.post(settings.gateway_url + path, json=body, headers=headers, timeout=30)


def load_during(settings, traffic, key, seconds, action, after_s=3.0):
    """Load through the gateway while `action` runs: from 2 s before it until `after_s` after
    it returned, and at least `seconds` in all. Returns (run, what the action returned)."""
    result: dict = {}
    done = threading.Event()
    finished_at: list[float] = []

    def until() -> bool:
        return done.is_set() and time.monotonic() - finished_at[0] > after_s

    thread = threading.Thread(
        target=lambda: result.setdefault(
            "run",
            run_load(
                settings.gateway_url,
                cycle(traffic),
                600,
                concurrency=4,
                api_key=key,
                until=lambda: until() and time.monotonic() - started >= seconds,
            ),
        )
    )
    started = time.monotonic()
    thread.start()
    time.sleep(2)
    try:
        outcome = action()
    finally:
        finished_at.append(time.monotonic())
        done.set()
        thread.join()
    return result["run"], outcome


# -- answers and bad requests ----------------------------------------------------------------
def test_both_models_answer_through_the_gateway(cluster, world, api_key):
    personal = post(cluster, "/recommend", {"user_id": world.users[0], "k": 5}, api_key).json()
    assert len(personal["items"]) == 5 and personal["fallback"] is False
    assert personal["model_version"] == world.recommender_version
    cold = post(cluster, "/recommend", {"user_id": "never-seen", "k": 3}, api_key).json()
    assert cold["fallback"] is True and "unknown user" in cold["fallback_reason"]
    item, store = world.priced[0]
    quote = post(
        cluster,
        "/price",
        {"item_id": item, "store_id": store, "guardrails": {"floor": 1.0, "max_change_pct": 10}},
        api_key,
    )
    body = quote.json()
    assert quote.status_code == 200 and body["price"] >= 1.0
    assert abs(body["price"] / body["current_price"] - 1) <= 0.10 + 1e-9
    batch = post(
        cluster,
        "/price_batch",
        {
            "requests": [
                {"item_id": item, "store_id": store},
                {"item_id": "nope", "store_id": store},
            ]
        },
        api_key,
    ).json()
    assert "price" in batch["results"][0] and batch["results"][1]["status"] == 404


BAD = [
    ("/recommend", {"user_id": "u", "k": 0}, "greater than or equal to 1"),
    ("/recommend", {"user_id": "u", "k": -3}, "greater than or equal to 1"),
    ("/recommend", {"user_id": "u", "k": 10**9}, "less than or equal to 1000"),
    ("/recommend", {"user_id": "u", "k": "ten"}, "valid integer"),
    ("/recommend", {"user_id": 12}, "valid string"),
    ("/recommend", {"user_id": ""}, "at least 1 character"),
    ("/recommend", {"k": 3}, "Field required"),
    ("/recommend", {"user_id": "u", "colour": "red"}, "Extra inputs"),
    ("/recommend", "not an object", "Input should be an object"),
    ("/recommend_batch", {"requests": [{"user_id": "u", "k": 0}]}, "greater than or equal"),
    ("/price", {"item_id": "no-such-item", "store_id": "store0"}, "no online pricing features"),
    ("/price", {"item_id": "sku000", "store_id": "store0", "cost": -1}, "greater than 0"),
    ("/price", {"item_id": "sku000", "store_id": "store0", "cost": "cheap"}, "valid number"),
    (
        "/price",
        {"item_id": "sku000", "store_id": "store0", "guardrails": {"floor": 5, "ceiling": 2}},
        "ceiling 2.0 is below floor",
    ),
    (
        "/price",
        {"item_id": "sku000", "store_id": "store0", "guardrails": {"max_change_pct": 300}},
        "less than or equal to 100",
    ),
    ("/price_batch", {"requests": []}, "send 1 to 1000 requests"),
]


@pytest.mark.parametrize(("path", "body", "message"), BAD)
def test_bad_requests_are_4xx_with_a_clear_message(cluster, api_key, path, body, message):
    response = post(cluster, path, body, api_key)
    assert 400 <= response.status_code < 500, response.text
    assert message in response.text


def test_huge_payloads_are_413_and_keys_and_tokens_are_required(cluster, api_key):
    huge = {"requests": [{"user_id": f"user-{n}", "k": 10} for n in range(40_000)]}
    assert post(cluster, "/recommend_batch", huge, api_key).status_code == 413
    assert post(cluster, "/recommend", {"user_id": "u"}, None).status_code == 401
    assert post(cluster, "/recommend", {"user_id": "u"}, "wrong-key").status_code == 401
    assert httpx.get(cluster.gateway_url + "/admin/status").status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.get(cluster.gateway_url + "/admin/status", headers=wrong).status_code == 401
    with pytest.raises(AdminRefused, match="AISLE_ADMIN_TOKEN"):
        GatewayAdmin(cluster.model_copy(update={"admin_token": None}))


# -- promotion under load -------------------------------------------------------------------
def test_promotion_and_rollback_under_sustained_load_lose_no_request(
    cluster, world, promoter, traffic, api_key
):
    challenger, _, _ = fit_recommender(cluster, write_online=False)
    version = register(cluster, "recommender", challenger)

    def promote_then_roll_back():
        outcome = promoter.promote("recommender", version)
        time.sleep(3)
        promoter.rollback("recommender")
        return outcome

    run, outcome = load_during(cluster, traffic, api_key, 60, promote_then_roll_back)
    versions = Counter(a.version for a in run.answers if a.path == "/recommend")
    print("load:", run.summary(), "versions:", dict(versions), "checks:", outcome.checks)
    assert run.seconds >= 59.5  # the load's own clock starts a moment after load_during's
    assert outcome.result == "promoted", outcome.reason
    assert run.failed == []  # zero failed requests across promotion and rollback
    assert versions[version] > 0 and versions[world.recommender_version] > 0
    steps = [e["step"] for e in AuditLog(cluster).entries("recommender") if e["version"] == version]
    assert steps[:2] == ["start", "deployed"] and "promoted" in steps
    assert GatewayAdmin(cluster).status()["recommender"]["active"] == "blue"  # rolled back
    assert outcome.previous_version == world.recommender_version
    from mlflow import MlflowClient

    champion = MlflowClient().get_model_version_by_alias("recommender", "champion")
    assert str(champion.version) == world.recommender_version  # the alias followed the rollback


def test_a_challenger_that_errors_or_answers_garbage_never_takes_traffic(
    cluster, world, promoter, traffic, api_key
):
    slots = LocalSlots(cluster)
    broken, _, _ = fit_recommender(cluster, write_online=False)
    broken.model.weights.data.fill_(float("nan"))  # answers NaN scores: garbage
    garbage = register(cluster, "recommender", broken)
    failing = register(cluster, "recommender", fit_recommender(cluster, write_online=False)[0])
    idle = "green"
    chaos = slots.chaos_file("recommender", idle)
    chaos.parent.mkdir(parents=True, exist_ok=True)

    def try_both():
        outcomes = [promoter.promote("recommender", garbage)]
        chaos.write_text(json.dumps({"error_rate": 1.0}))  # every scoring request fails
        try:
            outcomes.append(promoter.promote("recommender", failing))
        finally:
            chaos.unlink()
        return outcomes

    run, outcomes = load_during(cluster, traffic, api_key, 20, try_both)
    print("load:", run.summary(), [(o.result, o.reason[:120]) for o in outcomes])
    assert [o.result for o in outcomes] == ["rejected", "rejected"]
    assert "score is not a finite number" in outcomes[0].reason
    assert "500" in outcomes[1].reason
    assert run.failed == []
    assert {a.version for a in run.answers if a.path == "/recommend"} == {world.recommender_version}


def test_a_challenger_slow_after_the_flip_is_rolled_back_in_the_analysis_window(
    cluster, world, promoter, traffic, api_key
):
    version = register(cluster, "recommender", fit_recommender(cluster, write_online=False)[0])
    admin, chaos = GatewayAdmin(cluster), LocalSlots(cluster).chaos_file("recommender", "green")
    chaos.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def slow_once_live():  # the fault arrives with the live traffic, as a saturated GPU would
        while not stop.is_set():
            if admin.status()["recommender"]["active"] == "green":
                chaos.write_text(json.dumps({"latency_ms": 800}))
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=slow_once_live)
    watcher.start()
    try:
        run, outcome = load_during(
            cluster, traffic, api_key, 40, lambda: promoter.promote("recommender", version)
        )
    finally:
        stop.set()
        watcher.join()
        chaos.unlink(missing_ok=True)
    slow = [a for a in run.answers if a.version == version and a.ms > 700]
    print("load:", run.summary(), "slow answers seen by users:", len(slow), outcome.checks[-1])
    assert outcome.result == "rolled_back" and "p99" in outcome.reason
    assert outcome.checks[-1]["seconds_after_flip"] < cluster.promotion.analysis_seconds
    assert run.failed == []
    assert admin.status()["recommender"]["active"] == "blue"


def test_a_killed_live_slot_is_failed_over(cluster, world, traffic, api_key):
    slots, admin = LocalSlots(cluster), GatewayAdmin(cluster)
    route = admin.status()["recommender"]
    live = route["active"]
    assert route["colours"]["green" if live == "blue" else "blue"]["ready"]  # a spare is up
    run, _ = load_during(
        cluster, traffic, api_key, 12, lambda: slots.kill("recommender", live), after_s=8
    )
    after = [a for a in run.answers if a.path == "/recommend" and a.at > run.answers[0].at + 3]
    print("load:", run.summary(), "failed:", len(run.failed))
    assert run.failed == []
    assert after and all(a.status == 200 for a in after)

    up(cluster, on_step=lambda _: None)  # `serve up` restarts the dead slot, for the next tests
    revived = admin.status()["recommender"]
    assert revived["active"] == live and revived["colours"][live]["ready"] is not False


def test_the_promote_model_dag_promotes_pricing_and_moves_the_champion(
    cluster, world, traffic, api_key, monkeypatch
):
    from mlflow import MlflowClient

    from aisle import airflow_env
    from aisle.replay import load_dag
    from serving.sandbox import fit_pricing, shop_sales

    sales = shop_sales(weeks=24)  # four more weeks of the same shop: a retrained model
    version = register(cluster, "pricing", fit_pricing(sales), sales)
    airflow_env.migrate_db(cluster)
    for name, value in cluster.secrets_env().items():  # the admin token, for the task
        monkeypatch.setenv(name, value)
    with airflow_env.configured(cluster):  # the settings of the DAG's task
        dag = load_dag("promote_model")
        run, dag_run = load_during(
            cluster,
            traffic,
            api_key,
            45,
            lambda: dag.test(run_conf={"model": "pricing", "version": version}),
        )
    assert str(dag_run.state) == "success"
    assert run.failed == []
    champion = MlflowClient().get_model_version_by_alias("pricing", "champion")
    assert str(champion.version) == version
    assert champion.tags["promoted_from"] == world.pricing_version
    entries = AuditLog(cluster).entries("pricing")
    assert entries[-1]["step"] == "promoted" and entries[-1]["who"].startswith("airflow:")
