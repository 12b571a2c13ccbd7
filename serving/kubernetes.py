"""The Kubernetes backend of the slots: one Deployment per model and colour on the GPU node pool
(docker/k8s/), the official client (`kubernetes`).

    deploy   patch Deployment aisle-<model>-<colour>: the version's model URI, 1 replica
    wait     until the rollout is observed and every replica passes its readiness probe
    stop     scale to 0 (a rejected challenger frees its GPU)
    switch   patch Service aisle-<model> (the Argo-style active service) to select the colour

The gateway reaches each colour by its own Service (aisle-<model>-<colour>), so shadowing and
the analysis window work as they do locally; `switch` also moves the active Service, for clients
inside the cluster that bypass the gateway. Tested against a fake API server
(tests/serving/test_kubernetes.py); this machine has no cluster.
"""

from __future__ import annotations

import time
from typing import Any

from .slots import Slot, SlotFailed

PORT = 3000
VERSION_ANNOTATION = "aisle.dev/model-version"


def load_client_configuration(in_cluster: bool = True) -> None:
    """The pod's service account in the cluster, else ~/.kube/config."""
    from kubernetes import config

    if in_cluster:
        config.load_incluster_config()
    else:
        config.load_kube_config()


class KubernetesSlots:
    def __init__(self, namespace: str = "aisle", api_client: Any | None = None) -> None:
        from kubernetes import client

        self.namespace = namespace
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    @staticmethod
    def name(model: str, colour: str) -> str:
        return f"aisle-{model}-{colour}"

    def url(self, model: str, colour: str) -> str:
        return f"http://{self.name(model, colour)}.{self.namespace}.svc:{PORT}"

    def deploy(self, model: str, colour: str, version: str) -> Slot:
        patch = {
            "metadata": {"annotations": {VERSION_ANNOTATION: str(version)}},
            "spec": {
                "replicas": 1,
                "template": {
                    "metadata": {"annotations": {VERSION_ANNOTATION: str(version)}},
                    "spec": {
                        "containers": [
                            {
                                "name": "slot",
                                "env": [
                                    {
                                        "name": "AISLE_SERVE_MODEL_URI",
                                        "value": f"models:/{model}/{version}",
                                    }
                                ],
                            }
                        ]
                    },
                },
            },
        }
        self.apps.patch_namespaced_deployment(self.name(model, colour), self.namespace, patch)
        return Slot(model, colour, str(version), self.url(model, colour), None, time.time())

    def wait_ready(self, slot: Slot, timeout_s: float, poll_s: float = 1.0) -> None:
        name = self.name(slot.model, slot.colour)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            deployment = self.apps.read_namespaced_deployment_status(name, self.namespace)
            if _rolled_out(deployment):
                return
            time.sleep(poll_s)
        raise SlotFailed(f"deployment {name} not ready after {timeout_s:.0f} s")

    def stop(self, model: str, colour: str) -> None:
        patch = {"spec": {"replicas": 0}}
        self.apps.patch_namespaced_deployment(self.name(model, colour), self.namespace, patch)

    def get(self, model: str, colour: str) -> Slot | None:
        deployment = self.apps.read_namespaced_deployment(self.name(model, colour), self.namespace)
        if not deployment.spec.replicas:
            return None
        version = (deployment.metadata.annotations or {}).get(VERSION_ANNOTATION, "")
        return Slot(model, colour, version, self.url(model, colour))

    def switch(self, model: str, colour: str) -> None:
        patch = {"spec": {"selector": {"app": f"aisle-{model}", "colour": colour}}}
        self.core.patch_namespaced_service(f"aisle-{model}", self.namespace, patch)

    def active(self, model: str) -> str | None:
        service = self.core.read_namespaced_service(f"aisle-{model}", self.namespace)
        return (service.spec.selector or {}).get("colour")


def _rolled_out(deployment: Any) -> bool:
    """Kubernetes' own rollout-complete rule (as `kubectl rollout status` applies it)."""
    spec, status = deployment.spec, deployment.status
    wanted = spec.replicas or 0
    return (
        (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
        and (status.updated_replicas or 0) >= wanted
        and (status.ready_replicas or 0) >= wanted
        and (status.available_replicas or 0) >= wanted
    )
