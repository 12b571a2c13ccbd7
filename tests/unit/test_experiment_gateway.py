"""Experiments at the gateway, in process (aiohttp test servers; small fake slots stand in for
BentoML): units are split by a sticky hash at the share asked, the assigned arm is written to the
answer log, a batch with units in both arms is split and put back in order, a challenger that
breaks a guardrail ends the experiment with all traffic to the champion (and the audit log says
why), and starting one the gateway cannot run is a 409 that says why."""

from __future__ import annotations

import asyncio
import json
import secrets
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from core.audit import AuditLog
from core.settings import get_settings
from serving.experiments import arm_of
from serving.gateway import create_app

TOKEN = secrets.token_hex(16)
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def fake_slot(colour: str, status: int = 200, price: float = 10.0) -> web.Application:
    """A recommender and pricing slot that answers with its colour (and `status`)."""

    def recommendation(asked: dict) -> dict:
        return {"user_id": asked["user_id"], "items": [{"item_id": colour, "score": 1.0}],
                "fallback": False, "model_version": colour}  # fmt: skip

    async def recommend(request: web.Request) -> web.Response:
        return web.json_response(recommendation(await request.json()), status=status)

    async def recommend_batch(request: web.Request) -> web.Response:
        asked = await request.json()
        return web.json_response([recommendation(a) for a in asked["requests"]], status=status)

    async def quote(request: web.Request) -> web.Response:
        asked = await request.json()
        return web.json_response({**asked, "price": price, "cost": 5.0, "current_price": None,
                                  "model_version": colour}, status=status)  # fmt: skip

    app = web.Application()
    app.router.add_post("/recommend", recommend)
    app.router.add_post("/recommend_batch", recommend_batch)
    app.router.add_post("/price", quote)
    app.router.add_get("/readyz", lambda r: web.json_response({"ready": True}))
    app.router.add_post("/model", lambda r: web.json_response({"version": colour}))
    return app


@asynccontextmanager
async def cluster(tmp_path, green_status: int = 200, green_price: float = 10.0, **settings):
    """A gateway over a blue (live) and a green slot of both models, with its settings."""
    async with (
        TestServer(fake_slot("blue")) as blue,
        TestServer(fake_slot("green", green_status, green_price)) as green,
    ):
        slots = {"blue": str(blue.make_url("")), "green": str(green.make_url(""))}
        config = get_settings(
            data_dir=tmp_path / "data",
            admin_token=TOKEN,
            gateway_slots={"recommender": slots, "pricing": slots},
            **settings,
        )
        app = create_app(config)
        async with TestClient(TestServer(app)) as client:
            # Both fake slots are always ready: without the probes, a probe slowed past its
            # timeout on a loaded machine cannot fail a unit over to the other arm's colour
            # (failover has its own test in test_gateway.py).
            app["health"].cancel()
            yield client, app["gateway"], config


async def start(client: TestClient, model: str = "recommender", share: float = 0.5) -> dict:
    body = {"model": model, "id": f"{model}-test", "treatment": "green", "share": share,
            "metric": "purchases", "treatment_version": "2"}  # fmt: skip
    response = await client.post("/admin/experiments", json=body, headers=ADMIN)
    assert response.status == 200, await response.text()
    return await response.json()


def test_units_keep_their_arm_at_the_share_and_the_log_records_it(tmp_path):
    async def run() -> None:
        async with cluster(tmp_path) as (client, gateway, _):
            await start(client, share=0.3)
            users = [f"u{i}" for i in range(300)]
            seen = {}
            for user in users * 2:  # each shopper twice: the same arm both times
                answer = await client.post("/recommend", json={"user_id": user})
                colour = (await answer.json())["items"][0]["item_id"]
                assert seen.setdefault(user, colour) == colour
            treated = sum(c == "green" for c in seen.values())
            # Binomial(300, 0.3): sd 7.9, so 90 +- 32 is four standard deviations.
            assert 58 <= treated <= 122
            await asyncio.sleep(0.05)  # the log is written just after the answer
            records = list(gateway.answers.queue)
            assert len(records) == 600
            for record in records:
                expected = arm_of("recommender-test", record["user_id"], 0.3)
                assert record["arm"] == expected
                assert record["colour"] == ("green" if expected == "treatment" else "blue")
                assert record["experiment"] == "recommender-test"

    asyncio.run(run())


def test_a_batch_with_both_arms_is_split_and_put_back_in_order(tmp_path):
    async def run() -> None:
        async with cluster(tmp_path) as (client, gateway, _):
            await start(client)
            users = [f"u{i}" for i in range(20)]
            arms = [arm_of("recommender-test", u, 0.5) for u in users]
            assert {"control", "treatment"} == set(arms)
            body = {"requests": [{"user_id": u} for u in users]}
            answer = await client.post("/recommend_batch", json=body)
            assert answer.status == 200, await answer.text()
            got = await answer.json()
            assert [a["user_id"] for a in got] == users
            colours = [a["items"][0]["item_id"] for a in got]
            assert colours == ["green" if a == "treatment" else "blue" for a in arms]
            await asyncio.sleep(0.05)
            request_id = answer.headers["X-Request-Id"]
            logged = {r["request_id"]: r for r in gateway.answers.queue}
            for i, (user, arm) in enumerate(zip(users, arms, strict=True)):
                assert logged[f"{request_id}:{i}"]["user_id"] == user
                assert logged[f"{request_id}:{i}"]["arm"] == arm

    asyncio.run(run())


def test_a_failing_challenger_ends_the_experiment_with_traffic_to_the_champion(tmp_path):
    async def run() -> None:
        async with cluster(tmp_path, green_status=500,
                           experiments={"guardrail_min_requests": 5}) as (client, gateway,
                                                                          config):  # fmt: skip
            await start(client)
            for i in range(40):
                await client.post("/recommend", json={"user_id": f"u{i}"})
            await asyncio.sleep(2.5)  # the watch looks every 2 s
            status = await (await client.get("/admin/experiments", headers=ADMIN)).json()
            ended = status["recommender"]
            assert ended["status"] == "ended"
            assert ended["ended_reason"].startswith("guardrail: challenger error rate")
            assert gateway.routes["recommender"].active == "blue"
            for i in range(40):  # every shopper, treated or not, now gets the champion
                answer = await client.post("/recommend", json={"user_id": f"u{i}"})
                assert (await answer.json())["items"][0]["item_id"] == "blue"
            breach = [e for e in AuditLog(config).entries("recommender")
                      if e["step"] == "guardrail_breach"]  # fmt: skip
            assert breach and breach[0]["experiment"] == "recommender-test"

    asyncio.run(run())


def test_a_challenger_quoting_below_cost_ends_the_experiment(tmp_path):
    async def run() -> None:
        async with cluster(tmp_path, green_price=4.0) as (client, gateway, _):
            await start(client, model="pricing", share=0.9)
            for i in range(30):
                await client.post("/price", json={"item_id": f"i{i}", "store_id": "s1"})
            await asyncio.sleep(2.5)
            ended = gateway.routes["pricing"].experiment
            assert ended.status == "ended"
            assert "quotes outside their guardrails" in ended.ended_reason

    asyncio.run(run())


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"treatment": "blue"}, 409, "idle one"),
        ({"share": 1.5}, 400, "share must be between 0 and 1"),
        ({"treatment": "purple"}, 400, "treatment must be one of blue, green"),
    ],
)
def test_an_experiment_the_gateway_cannot_run_is_refused_with_the_reason(
    tmp_path, change, status, says
):
    async def run() -> None:
        async with cluster(tmp_path) as (client, _, _):
            body = {"model": "recommender", "id": "x", "treatment": "green", "share": 0.5,
                    "metric": "purchases", **change}  # fmt: skip
            response = await client.post("/admin/experiments", json=body, headers=ADMIN)
            assert response.status == status
            assert says in await response.text()
            unauthorised = await client.post("/admin/experiments", json=body)
            assert unauthorised.status == 401

    asyncio.run(run())


def test_a_second_experiment_waits_for_the_first_and_the_route_survives_a_restart(tmp_path):
    async def run() -> None:
        async with cluster(tmp_path) as (client, _, config):
            await start(client)
            body = {"model": "recommender", "id": "y", "treatment": "green", "share": 0.5,
                    "metric": "clicks"}  # fmt: skip
            again = await client.post("/admin/experiments", json=body, headers=ADMIN)
            assert again.status == 409
            assert "already runs experiment recommender-test" in await again.text()
        saved = json.loads((config.serving_dir / "routes.json").read_text())
        assert saved["recommender"]["experiment"]["status"] == "running"

    asyncio.run(run())
