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

from core.settings import EventStream, Settings, get_settings
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
        "nats",
        "events-consumer",
        "kafka",
        "spark-master",
        "spark-worker",
    }
    assert expected <= set(services)
    # Kafka starts only when asked (--profile kafka); everything else starts by default
    assert services["kafka"]["profiles"] == ["kafka"]
    assert [n for n, s in services.items() if "profiles" in s] == ["kafka"]
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


def config_map(name: str) -> dict:
    return next(
        d for d in manifests() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name
    )


def test_the_pods_settings_are_aisle_settings():
    config = config_map("aisle-settings")
    fields = {f"AISLE_{name.upper()}" for name in Settings.model_fields}
    nested = {f"AISLE_EVENTS__{name.upper()}" for name in EventStream.model_fields}
    assert set(config["data"]) <= fields | nested
    assert config["data"]["AISLE_SERVING_BACKEND"] == "kubernetes"
    events = {
        key.removeprefix("AISLE_EVENTS__").lower(): value
        for key, value in config["data"].items()
        if key.startswith("AISLE_EVENTS__")
    }
    assert EventStream(**events).broker == "nats"  # valid values, not only known names


def resolved(value: str) -> str:
    """A compose value with its ${NAME:-default} interpolations replaced by their defaults."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_the_event_stream_runs_in_compose_as_the_stack_runs_it():
    services = compose()["services"]
    nats, consumer, gateway = services["nats"], services["events-consumer"], services["gateway"]
    assert nats["image"].startswith("nats:2.10")
    assert nats["command"] == ["-js", "-sd", "/data", "-m", "8222"]
    assert any(v.endswith(":/data") and not v.startswith(".") for v in nats["volumes"])
    assert "http://localhost:8222/healthz" in nats["healthcheck"]["test"]

    assert consumer["command"] == ["python", "-m", "features.stream"]
    assert consumer["restart"] == "unless-stopped"
    assert consumer["depends_on"]["nats"] == {"condition": "service_healthy"}
    # a service whose profile is not started is a dependency only when not required
    for name, condition in {**consumer["depends_on"], **gateway["depends_on"]}.items():
        if "profiles" in services[name]:
            assert condition == {"condition": "service_healthy", "required": False}, name
    assert consumer["depends_on"]["kafka"]["required"] is False
    env = consumer["environment"]
    port = int(env.get("AISLE_EVENTS__CONSUMER_PORT", EventStream().consumer_port))
    assert f"http://localhost:{port}/healthz" in consumer["healthcheck"]["test"]
    assert env["AISLE_SERVING_HOST"] == "0.0.0.0"  # reachable beyond its own container
    # it writes the data folder and the Feast stores the Airflow workers write
    worker = services["airflow-worker"]
    assert "data:/data" in consumer["volumes"] and "data:/data" in worker["volumes"]
    shared = ("AISLE_PROFILE", "AISLE_DATA_DIR", "AISLE_FEAST_REGISTRY_URL", "AISLE_FEAST_REDIS")
    for name in shared:
        assert env[name] == worker["environment"][name], name
    assert consumer["image"] == gateway["image"]  # the image with Aisle and its brokers' clients

    # the gateway publishes where the consumer reads
    for name in ("AISLE_EVENTS__BROKER", "AISLE_EVENTS__URL"):
        assert gateway["environment"][name] == env[name], name
    assert gateway["depends_on"]["nats"] == {"condition": "service_healthy"}
    settings = get_settings(
        events={
            "broker": resolved(env["AISLE_EVENTS__BROKER"]),
            "url": resolved(env["AISLE_EVENTS__URL"]),
        }
    )
    assert settings.events.broker == "nats" and not settings.runs_own_broker
    assert settings.broker_url == "nats://nats:4222"  # the nats service's client port


def test_the_kafka_switch_names_a_broker_the_kafka_profile_runs():
    text = (DOCKER / "compose.yaml").read_text()
    for line in ("AISLE_EVENTS__BROKER=kafka", "AISLE_EVENTS__URL=kafka:9092", "--profile kafka"):
        assert line in text, line
    env = compose()["services"]["events-consumer"]["environment"]
    assert env["AISLE_EVENTS__BROKER"].startswith("${AISLE_EVENTS__BROKER:-")  # .env switches it
    assert env["AISLE_EVENTS__URL"].startswith("${AISLE_EVENTS__URL:-")
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    config = kafka["environment"]
    assert config["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "PLAINTEXT://kafka:9092" in config["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert config["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{config['KAFKA_NODE_ID']}@kafka:9093"
    settings = get_settings(events={"broker": "kafka", "url": "kafka:9092"})
    assert settings.broker_url == "kafka:9092" and not settings.runs_own_broker


def test_the_event_stream_in_kubernetes():
    docs = manifests()
    config = config_map("aisle-settings")["data"]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    consumer_deployment = deployments["events-consumer"]
    assert consumer_deployment["spec"]["replicas"] == 1  # it owns the session view's writes
    assert consumer_deployment["spec"]["strategy"]["type"] == "Recreate"  # never two at once
    pod = consumer_deployment["spec"]["template"]["spec"]
    (consumer,) = pod["containers"]
    assert consumer["command"] == ["python", "-m", "features.stream"]
    env = {e["name"]: e["value"] for e in consumer["env"]}
    port = int(env.get("AISLE_EVENTS__CONSUMER_PORT", EventStream().consumer_port))
    named = {p["name"]: p["containerPort"] for p in consumer["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        get = consumer[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert named.get(get["port"], get["port"]) == port, probe
    assert env["AISLE_SERVING_HOST"] == "0.0.0.0"  # the kubelet probes the pod's address
    assert {"cpu", "memory"} <= set(consumer["resources"]["requests"])
    assert "memory" in consumer["resources"]["limits"]
    mounts = {m["name"]: m["mountPath"] for m in consumer["volumeMounts"]}
    (volume,) = [v for v in pod["volumes"] if mounts.get(v["name"]) == config["AISLE_DATA_DIR"]]
    claims = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PersistentVolumeClaim"}
    assert (
        "ReadWriteMany"
        in claims[volume["persistentVolumeClaim"]["claimName"]]["spec"]["accessModes"]
    )  # the Airflow workers read the raw zone it writes

    # the gateway and the consumer read the broker from the same settings
    gateway = deployments["aisle-gateway"]["spec"]["template"]["spec"]["containers"][0]
    for container in (gateway, consumer):
        assert {"configMapRef": {"name": "aisle-settings"}} in container["envFrom"]
        assert not {e["name"] for e in container.get("env", [])} & {
            "AISLE_EVENTS__BROKER",
            "AISLE_EVENTS__URL",
        }  # no override of one of them in one pod
    url = config["AISLE_EVENTS__URL"]
    host, service_port = re.fullmatch(r"nats://([^.]+)\.aisle\.svc:(\d+)", url).groups()
    assert int(service_port) in [p["port"] for p in services[host]["spec"]["ports"]]
    nats = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == host)
    assert services[host]["spec"]["selector"] == nats["spec"]["selector"]["matchLabels"]
    (server,) = nats["spec"]["template"]["spec"]["containers"]
    assert server["image"].startswith("nats:2.10") and "-js" in server["args"]


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
    packages = re.search(r"include = \[(.*?)\]", (DOCKER.parent / "pyproject.toml").read_text())
    for text in (serving, airflow):
        copied = re.findall(r"^COPY (?:--\S+ )?(\S+)", text, flags=re.M)
        for source in copied:
            assert (DOCKER.parent / source).exists(), source
        for package in re.findall(r'"(\w+)\*"', packages.group(1)):
            assert package in copied, f"the image installs {package} but does not copy it"


def test_the_data_stage_runs_on_the_spark_cluster_in_compose(monkeypatch):
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    services = compose()["services"]
    master, worker = services["spark-master"], services["spark-worker"]
    for spark in (master, worker):
        assert re.fullmatch(r"apache/spark:4\.\d+\.\d+-scala2\.13-java17-\S+", spark["image"])
        assert "environment" not in spark or not any(
            re.search("(?i)password|secret|token", k) for k in spark["environment"]
        )
    assert master["command"][1] == "org.apache.spark.deploy.master.Master"
    host = master["command"][master["command"].index("--host") + 1]
    port = master["command"][master["command"].index("--port") + 1]
    assert worker["command"][1] == "org.apache.spark.deploy.worker.Worker"
    assert worker["command"][-1] == f"spark://{host}:{port}"
    assert host == "spark-master"  # the service name: the compose network resolves it
    # executors read the parquet paths the drivers (Airflow's tasks) name
    assert "data:/data" in worker["volumes"]

    for name in ("airflow-scheduler", "airflow-worker"):
        env = services[name]["environment"]
        assert "data:/data" in services[name]["volumes"]
        settings = get_settings(
            engine=env["AISLE_ENGINE"],
            spark={"master": env["AISLE_SPARK__MASTER"], "submit": env["AISLE_SPARK__SUBMIT"]},
        )
        assert settings.engine == "spark" and settings.spark.submit
        assert settings.spark.master == worker["command"][-1]
        # spark-submit's connection names the same master
        monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", env["AIRFLOW_CONN_SPARK_DEFAULT"])
        assert SparkSubmitHook(conn_id="spark_default")._connection["master"] == (
            settings.spark.master
        )
    # the tasks that do not run on Spark keep the embedded engine
    assert "AISLE_ENGINE" not in services["gateway"]["environment"]


def test_spark_on_kubernetes_may_run_executors_in_the_namespace_only():
    docs = manifests()
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount" and "spark" in str(d)]
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "aisle-spark"]
    (binding,) = [
        d for d in docs if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == "aisle-spark"
    ]
    assert binding["roleRef"]["kind"] == "Role"  # namespaced: no ClusterRole
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "aisle"}
    ]
    pods = [r for r in role["rules"] if "pods" in r["resources"]]
    assert pods and {"create", "get", "list", "watch", "delete"} <= set(pods[0]["verbs"])
    assert all(r["apiGroups"] == [""] for r in role["rules"])  # nothing beyond the core group

    data = config_map("aisle-spark-settings")["data"]
    from core.settings import SparkEngine

    nested = {f"AISLE_SPARK__{name.upper()}" for name in SparkEngine.model_fields}
    assert set(data) <= {f"AISLE_{n.upper()}" for n in Settings.model_fields} | nested
    spark = {k.removeprefix("AISLE_SPARK__").lower(): v for k, v in data.items() if "__" in k}
    settings = get_settings(
        engine=data["AISLE_ENGINE"],
        spark=SparkEngine(**{**spark, "conf": json.loads(spark["conf"])}),
    )
    conf = settings.spark.spark_conf()
    assert conf["spark.master"] == "k8s://https://kubernetes.default.svc"
    assert conf["spark.kubernetes.namespace"] == account["metadata"]["namespace"]
    assert (
        conf["spark.kubernetes.authenticate.driver.serviceAccountName"]
        == (account["metadata"]["name"])
    )
    # one Spark release in compose and in Kubernetes
    assert (
        conf["spark.kubernetes.container.image"] == compose()["services"]["spark-master"]["image"]
    )
    # executors mount the data folder's claim where the driver reads it
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    volume = "spark.kubernetes.executor.volumes.persistentVolumeClaim.data"
    assert conf[f"{volume}.options.claimName"] in claims
    assert conf[f"{volume}.mount.path"] == config_map("aisle-settings")["data"]["AISLE_DATA_DIR"]
