"""The gateway in process (aiohttp's test servers; small fake slots stand in for BentoML): a
request reaches the live colour, a switch moves the traffic, a shadow colour receives its share
of the requests and the pairs are kept, a slot that stops answering is failed over; and a read of
the admin API without a known model (or colour) is a 400 that names the allowed values, never a
500."""

from __future__ import annotations

import asyncio
import secrets
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from core.settings import get_settings
from serving.gateway import create_app

TOKEN = secrets.token_hex(16)
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def fake_slot(colour: str) -> web.Application:
    """A recommender slot that answers with its colour."""

    async def recommend(request: web.Request) -> web.Response:
        return web.json_response({"colour": colour, "asked": await request.json()})

    app = web.Application()
    app.router.add_post("/recommend", recommend)
    app.router.add_get("/readyz", lambda r: web.json_response({"ready": True}))
    app.router.add_post("/model", lambda r: web.json_response({"version": colour}))
    return app


@asynccontextmanager
async def gateway(tmp_path, slots: dict[str, str] | None = None):
    """A client of a fresh gateway (with the admin token) over `slots`: colour -> URL."""
    settings = get_settings(
        data_dir=tmp_path / "data",
        admin_token=TOKEN,
        gateway_slots={"recommender": slots} if slots else {},
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


def admin_get(tmp_path, path: str, params: dict[str, str]) -> tuple[int, str]:
    """GET an admin `path` on a fresh gateway with no slots: (status, text)."""

    async def call() -> tuple[int, str]:
        async with gateway(tmp_path) as client:
            response = await client.get(path, params=params, headers=ADMIN)
            return response.status, await response.text()

    return asyncio.run(call())


async def colour_of_answer(client: TestClient) -> str:
    response = await client.post("/recommend", json={"user_id": "u"})
    assert response.status == 200, await response.text()
    return (await response.json())["colour"]


# -- scoring ---------------------------------------------------------------------------------
def test_requests_reach_the_live_colour_and_a_switch_moves_them(tmp_path):
    async def run() -> None:
        async with TestServer(fake_slot("blue")) as blue, TestServer(fake_slot("green")) as green:
            slots = {"blue": str(blue.make_url("")), "green": str(green.make_url(""))}
            async with gateway(tmp_path, slots) as client:
                assert await colour_of_answer(client) == "blue"
                switch = {"model": "recommender", "colour": "green"}
                response = await client.post("/admin/switch", json=switch, headers=ADMIN)
                assert (await response.json())["after"] == "green"
                assert await colour_of_answer(client) == "green"
                recent = await client.get("/admin/recent", params={"model": "recommender"},
                                          headers=ADMIN)  # fmt: skip
                assert [r["body"] for r in await recent.json()] == [{"user_id": "u"}] * 2

    asyncio.run(run())


def test_the_shadow_colour_gets_its_share_and_the_pairs_are_kept(tmp_path):
    async def run() -> None:
        async with TestServer(fake_slot("blue")) as blue, TestServer(fake_slot("green")) as green:
            slots = {"blue": str(blue.make_url("")), "green": str(green.make_url(""))}
            async with gateway(tmp_path, slots) as client:
                shadow = {"model": "recommender", "colour": "green", "share": 1.0}
                await client.post("/admin/shadow", json=shadow, headers=ADMIN)
                assert await colour_of_answer(client) == "blue"  # the caller sees the live one
                pairs = []
                for _ in range(50):  # mirrored in the background
                    found = await client.get(
                        "/admin/pairs", params={"model": "recommender"}, headers=ADMIN
                    )
                    pairs = await found.json()
                    if pairs:
                        break
                    await asyncio.sleep(0.02)
                (pair,) = pairs
                assert pair["live"]["colour"] == "blue" and pair["shadow"]["colour"] == "green"
                assert pair["request"] == {"user_id": "u"} and pair["shadow_status"] == 200

    asyncio.run(run())


def test_a_slot_that_stops_answering_is_failed_over(tmp_path):
    async def run() -> None:
        async with TestServer(fake_slot("green")) as green:
            blue = TestServer(fake_slot("blue"))
            await blue.start_server()
            slots = {"blue": str(blue.make_url("")), "green": str(green.make_url(""))}
            async with gateway(tmp_path, slots) as client:
                assert await colour_of_answer(client) == "blue"
                await blue.close()
                assert await colour_of_answer(client) == "green"
                metrics = await (await client.get("/metrics")).text()
                assert 'aisle_gateway_failovers_total{model="recommender"} 1.0' in metrics

    asyncio.run(run())


# -- admin reads -----------------------------------------------------------------------------
READS = ["/admin/stats", "/admin/pairs", "/admin/recent"]


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize("params", [{}, {"model": "nope"}], ids=["no model", "unknown model"])
def test_a_read_without_a_known_model_is_400_naming_the_models(tmp_path, path, params):
    status, text = admin_get(tmp_path, path, {"colour": "blue", **params})
    assert status == 400, text
    assert "recommender" in text and "pricing" in text


@pytest.mark.parametrize("params", [{}, {"colour": "red"}], ids=["no colour", "unknown colour"])
def test_stats_without_a_known_colour_is_400_naming_the_colours(tmp_path, params):
    status, text = admin_get(tmp_path, "/admin/stats", {"model": "pricing", **params})
    assert status == 400, text
    assert "blue" in text and "green" in text


@pytest.mark.parametrize("path", READS)
def test_a_read_of_a_known_model_answers(tmp_path, path):
    status, text = admin_get(tmp_path, path, {"model": "recommender", "colour": "green"})
    assert status == 200, text


@pytest.mark.parametrize("n", ["0", "-3", "many"])
def test_recent_asks_for_a_whole_number_of_requests(tmp_path, n):
    status, text = admin_get(tmp_path, "/admin/recent", {"model": "recommender", "n": n})
    assert status == 400, text  # n=0 answered every stored request before ([-0:] is all)
    assert "n" in text


def test_a_timed_out_probe_is_tolerated_but_a_refusal_or_not_ready_is_not():
    from serving.slot_health import PROBE_TIMEOUTS_TO_DOWN, SlotHealth

    health = SlotHealth({})
    health._by_slot[("recommender", "blue")] = {"ready": True, "version": "3"}
    for _ in range(PROBE_TIMEOUTS_TO_DOWN - 1):  # a loaded machine: the slot keeps its traffic
        judged = health._judge("recommender", "blue", {"ready": False, "timed_out": True,
                                                       "checked": 1.0})  # fmt: skip
        health._by_slot[("recommender", "blue")] = judged
        assert health.ready("recommender", "blue") and judged["version"] == "3"
    judged = health._judge("recommender", "blue", {"ready": False, "timed_out": True,
                                                   "checked": 2.0})  # fmt: skip
    assert judged["ready"] is False  # the threshold-th timeout in a row: down
    answered = health._judge("recommender", "blue", {"ready": True, "version": "3", "checked": 3})
    assert answered == {"ready": True, "version": "3", "checked": 3}  # the count starts again
    refused = health._judge("recommender", "green", {"ready": False, "checked": 4.0})
    assert refused["ready"] is False  # a refused connection or a 503 is down at once
