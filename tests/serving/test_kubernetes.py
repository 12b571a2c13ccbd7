"""The Kubernetes backend of promotion, against a fake API server: the official client's real
HTTP calls (paths, verbs, patch bodies) reach a small in-memory cluster that rolls Deployments
out after a delay, as the control plane would."""

from __future__ import annotations

import copy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client

from serving.kubernetes import VERSION_ANNOTATION, KubernetesSlots
from serving.slots import SlotFailed

NS = "aisle"
ROLLOUT_S = 0.3


def deployment(name: str, colour: str, model: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "generation": 1, "annotations": {}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": f"aisle-{model}", "colour": colour}},
            "template": {
                "metadata": {"labels": {"app": f"aisle-{model}", "colour": colour}},
                "spec": {"containers": [{"name": "slot", "image": "aisle-serving", "env": []}]},
            },
        },
        "status": {"observedGeneration": 1, "replicas": 0},
    }


def merge(target: dict, patch: dict) -> None:
    """A strategic merge patch as the API server applies it to these objects: maps merge,
    lists of named objects merge by name, other values replace."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        elif isinstance(value, list) and value and all("name" in v for v in value):
            existing = {v["name"]: v for v in target.get(key, [])}
            for item in value:
                if item["name"] in existing:
                    merge(existing[item["name"]], item)
                else:
                    target.setdefault(key, []).append(item)
        else:
            target[key] = copy.deepcopy(value)


class FakeCluster:
    def __init__(self, fail_rollout: set[str] | None = None) -> None:
        self.objects: dict[tuple[str, str], dict] = {}
        self.calls: list[tuple[str, str, str | None]] = []
        self.fail_rollout = fail_rollout or set()
        for model in ("recommender", "pricing"):
            for colour in ("blue", "green"):
                name = f"aisle-{model}-{colour}"
                self.objects[("deployments", name)] = deployment(name, colour, model)
            self.objects[("services", f"aisle-{model}")] = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"aisle-{model}", "namespace": NS},
                "spec": {
                    "selector": {"app": f"aisle-{model}", "colour": "blue"},
                    "ports": [{"port": 3000}],
                },
            }

    def get(self, kind: str, name: str) -> dict:
        found = self.objects[(kind, name)]
        if kind == "deployments":
            self._progress(found)
        return found

    def patch(self, kind: str, name: str, body: dict) -> dict:
        found = self.objects[(kind, name)]
        merge(found, body)
        if kind == "deployments":
            found["metadata"]["generation"] += 1
            found["metadata"]["patched_at"] = time.monotonic()
        return found

    def _progress(self, found: dict) -> None:
        """The controller's work: after ROLLOUT_S every replica is updated and ready."""
        patched = found["metadata"].get("patched_at", 0)
        if time.monotonic() - patched < ROLLOUT_S or found["metadata"]["name"] in self.fail_rollout:
            return
        wanted = found["spec"]["replicas"]
        found["status"] = {
            "observedGeneration": found["metadata"]["generation"],
            "replicas": wanted,
            "updatedReplicas": wanted,
            "readyReplicas": wanted,
            "availableReplicas": wanted,
        }


def handler_for(cluster: FakeCluster):
    class Handler(BaseHTTPRequestHandler):
        def _route(self) -> tuple[str, str]:
            parts = self.path.split("?")[0].strip("/").split("/")
            # /apis/apps/v1/namespaces/aisle/deployments/<name>[/status], /api/v1/.../services/<n>
            index = parts.index("namespaces")
            assert parts[index + 1] == NS
            return parts[index + 2], parts[index + 3]

        def _answer(self, body: dict, status: int = 200) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            kind, name = self._route()
            cluster.calls.append(("GET", self.path, None))
            self._answer(cluster.get(kind, name))

        def do_PATCH(self) -> None:
            kind, name = self._route()
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            cluster.calls.append(("PATCH", self.path, self.headers["Content-Type"]))
            self._answer(cluster.patch(kind, name, body))

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def fake():
    cluster = FakeCluster(fail_rollout={"aisle-pricing-green"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(cluster))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_port}")
    slots = KubernetesSlots(NS, client.ApiClient(configuration))
    yield cluster, slots
    server.shutdown()


def test_deploy_sets_the_version_and_waits_for_the_rollout(fake):
    cluster, slots = fake
    slot = slots.deploy("recommender", "green", "7")
    assert slot.url == "http://aisle-recommender-green.aisle.svc:3000"
    started = time.monotonic()
    slots.wait_ready(slot, timeout_s=10, poll_s=0.05)
    assert time.monotonic() - started >= ROLLOUT_S * 0.9  # it waited for the controller
    found = cluster.objects[("deployments", "aisle-recommender-green")]
    assert found["spec"]["replicas"] == 1
    (container,) = found["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "aisle-serving"  # merged by name, not replaced
    assert container["env"] == [{"name": "AISLE_SERVE_MODEL_URI", "value": "models:/recommender/7"}]
    assert slots.get("recommender", "green").version == "7"
    assert found["metadata"]["annotations"][VERSION_ANNOTATION] == "7"
    patches = [c for c in cluster.calls if c[0] == "PATCH"]
    assert patches[0][1] == "/apis/apps/v1/namespaces/aisle/deployments/aisle-recommender-green"
    assert patches[0][2] == "application/strategic-merge-patch+json"


def test_a_rollout_that_never_gets_ready_fails_the_slot(fake):
    _, slots = fake
    slot = slots.deploy("pricing", "green", "3")
    with pytest.raises(SlotFailed, match="aisle-pricing-green not ready"):
        slots.wait_ready(slot, timeout_s=0.5, poll_s=0.05)


def test_switch_flips_the_active_service_selector_and_stop_scales_to_zero(fake):
    cluster, slots = fake
    assert slots.active("recommender") == "blue"
    slots.switch("recommender", "green")
    assert slots.active("recommender") == "green"
    selector = cluster.objects[("services", "aisle-recommender")]["spec"]["selector"]
    assert selector == {"app": "aisle-recommender", "colour": "green"}
    slots.deploy("recommender", "blue", "2")
    slots.stop("recommender", "blue")
    assert cluster.objects[("deployments", "aisle-recommender-blue")]["spec"]["replicas"] == 0
    assert slots.get("recommender", "blue") is None
