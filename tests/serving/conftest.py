"""A live cluster for the serving tests: a sandbox world (both models registered, features
online), the event stream (its NATS server and consumer, under the stack's supervisor), the
gateway and both models' live slots as real processes on private ports."""

from __future__ import annotations

import secrets

import pytest

from core.settings import Settings, get_settings

API_KEY = "test-key-" + secrets.token_hex(4)


@pytest.fixture(scope="session")
def cluster_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return get_settings(
        data_dir=tmp_path_factory.mktemp("cluster") / "data",
        gateway_port=18700,
        slot_port_base=18710,
        admin_token=secrets.token_hex(16),
        api_keys=[API_KEY],
        events={"broker_port": 18730, "consumer_port": 18732},
        promotion={
            "shadow_seconds": 4,
            "analysis_seconds": 10,
            "shadow_min_requests": 20,
            "max_p99_ms": 400,
        },
    )


@pytest.fixture(scope="session")
def world(cluster_settings: Settings):
    from serving.sandbox import build_world

    return build_world(cluster_settings)


@pytest.fixture(scope="session")
def cluster(cluster_settings: Settings, world):
    """The event stream and `aisle serve up` on the world; stopped at the end of the session."""
    from aisle.stack import stop, up_event_stream
    from serving.cluster import down, up

    with pytest.MonkeyPatch.context() as environment:
        # the slots (children of this process) read fault-injection files (chaos.py)
        environment.setenv("AISLE_SERVING_CHAOS", "1")
        try:
            up_event_stream(cluster_settings)
            up(cluster_settings, on_step=lambda _: None)
            yield cluster_settings
        finally:
            down(cluster_settings)
            for name in ("supervisor", "events-consumer", "events-broker"):
                stop(cluster_settings, name)


@pytest.fixture(scope="session")
def api_key() -> str:
    return API_KEY
