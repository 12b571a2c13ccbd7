"""docker/: the compose file against the Compose Specification's JSON schema, the Kubernetes
manifests against Kubernetes' own schemas (strict: no unknown fields), and the wiring between
them and the code (names the backend patches, settings the pods read, metrics the dashboard
plots, modules the images start). Nothing here needs Docker or a cluster."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from core.settings import Settings
from serving.kubernetes import KubernetesSlots
from serving.slots import SERVICES

DOCKER = Path(__file__).resolve().parents[2] / "docker"
MANIFESTS = sorted((DOCKER / "k8s").glob("*.yaml"))
KUBERNETES = "1.33.0"


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def manifests() -> list[dict]:
    return [d for path in MANIFESTS for d in yaml.safe_load_all(path.read_text()) if d]


def test_the_compose_file_follows_the_compose_specification():
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(compose(), schema)  # raises with the path of the first violation
    broken = dict(compose(), services={"gateway": {"image": 7, "ports": "8700"}})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_the_stack_has_every_part_and_gpu_slots():
    services = compose()["services"]
    expected = {
        "postgres",
        "redis",
        "mlflow",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-worker",
        "gateway",
        "prometheus",
        "grafana",
        "recommender-blue",
        "recommender-green",
        "pricing-blue",
        "pricing-green",
    }
    assert expected <= set(services)
    for name in ("recommender-blue", "recommender-green", "pricing-blue", "pricing-green"):
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]
        assert services[name]["environment"]["AISLE_SERVICE"] in SERVICES.values()


def test_no_secret_has_a_default():
    text = (DOCKER / "compose.yaml").read_text()
    for name in (
        "POSTGRES_PASSWORD",
        "AISLE_ADMIN_TOKEN",
        "AISLE_API_KEYS",
        "GRAFANA_ADMIN_PASSWORD",
        "AIRFLOW_JWT_SECRET",
    ):
        assert f"${{{name}:?" in text, f"{name} must be required, without a default"
        assert not re.search(rf"\${{{name}:-", text)
    for path in [*MANIFESTS, DOCKER / "serving.Dockerfile", DOCKER / "airflow.Dockerfile"]:
        assert not re.search(r"(?i)(password|token|secret)\s*[:=]\s*['\"]?\w{6,}", path.read_text())


def test_files_the_stack_mounts_and_builds_exist():
    stack = compose()
    for service in stack["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), source
        if "build" in service:
            assert (DOCKER / service["build"]["context"] / service["build"]["dockerfile"]).exists()
    targets = yaml.safe_load((DOCKER / "prometheus.yml").read_text())["scrape_configs"]
    for job in targets:
        for target in job["static_configs"][0]["targets"]:
            assert target.split(":")[0] in stack["services"]


@pytest.mark.parametrize(
    "document", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_manifests_are_valid_kubernetes(document):
    kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_a_manifest_with_a_typo_is_caught():
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_slots_ask_for_a_gpu_and_are_probed_and_named_as_the_backend_patches_them():
    deployments = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "Service"}
    for model, service in SERVICES.items():
        for colour in ("blue", "green"):
            name = KubernetesSlots.name(model, colour)
            (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
            assert container["name"] == "slot"  # the backend's patches merge by this name
            assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["AISLE_SERVICE"] == service
            assert services[name]["spec"]["selector"] == {"app": f"aisle-{model}", "colour": colour}
        assert services[f"aisle-{model}"]["spec"]["selector"]["colour"] in ("blue", "green")


def test_the_pods_settings_are_aisle_settings():
    config = next(d for d in manifests() if d["kind"] == "ConfigMap")
    fields = {f"AISLE_{name.upper()}" for name in Settings.model_fields}
    assert set(config["data"]) <= fields
    assert config["data"]["AISLE_SERVING_BACKEND"] == "kubernetes"


def test_the_dashboard_plots_metrics_that_exist():
    dashboard = json.loads((DOCKER / "grafana/dashboards/aisle-serving.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    source = "".join(p.read_text() for p in (DOCKER.parent / "serving").glob("*.py"))
    for metric in set(re.findall(r"aisle_[a-z_]+", exprs)):
        base = re.sub(r"_(total|bucket|sum|count)$", "", metric)
        assert f'"{base}"' in source or f'name="{base}"' in source, metric


def test_the_images_start_what_exists():
    serving = (DOCKER / "serving.Dockerfile").read_text()
    assert serving.startswith("#") and "FROM nvidia/cuda:" in serving
    assert "AISLE_SERVICE=serving.recommender_service:RecommenderService" in serving
    assert 'torch==2.13.0"' in serving and "download.pytorch.org/whl/cu" in serving
    airflow = (DOCKER / "airflow.Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in airflow
    for text in (serving, airflow):
        for source in re.findall(r"^COPY (?:--\S+ )?(\S+)", text, flags=re.M):
            assert (DOCKER.parent / source).exists(), source
