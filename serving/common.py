"""What both scoring services share: which model version a slot serves, its middleware, and the
BentoML options of the GPU profile.

A slot serves the registered version named by AISLE_SERVE_MODEL_URI (the cluster sets
`models:/<name>/<version>`); without it, the `champion` alias. The version is resolved once, at
start, and every answer names it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from core.settings import Settings

MODEL_URI_ENV = "AISLE_SERVE_MODEL_URI"


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    uri: str  # models:/<name>/<version>: what was loaded


def served_model(settings: Settings, name: str) -> ServedModel:
    """The registry version this process serves (AISLE_SERVE_MODEL_URI, else @champion)."""
    from mlflow import MlflowClient

    from training.tracking import CHAMPION, point_at_store

    point_at_store(settings)
    uri = os.environ.get(MODEL_URI_ENV) or f"models:/{name}@{CHAMPION}"
    prefix = f"models:/{name}"
    if not uri.startswith(prefix):
        raise ValueError(f"{MODEL_URI_ENV}={uri!r} is not a version of the {name} model")
    rest = uri[len(prefix) :]
    client = MlflowClient()
    if rest.startswith("@"):
        version = client.get_model_version_by_alias(name, rest[1:]).version
    elif rest.startswith("/") and rest[1:].isdigit():
        version = client.get_model_version(name, rest[1:]).version
    else:
        raise ValueError(f"{MODEL_URI_ENV}={uri!r}: expected models:/{name}/N or models:/{name}@X")
    return ServedModel(name, str(version), f"{prefix}/{version}")


def service_options(name: str) -> dict[str, Any]:
    """`@bentoml.service` options: the GPU profile (AISLE_SERVING_GPU=true) asks for a GPU."""
    options: dict[str, Any] = {
        "name": name,
        "workers": 1,
        "traffic": {"timeout": 30, "concurrency": 64},
        # a log line per request costs a slot a tenth of its throughput; the gateway counts
        "logging": {"access": {"enabled": False}},
    }
    if os.environ.get("AISLE_SERVING_GPU", "").lower() in ("1", "true", "yes"):
        options["resources"] = {"gpu": 1}
    return options


def add_middleware(service: Any, settings: Settings) -> None:
    """API keys (when configured), the body cap, and fault injection (when its file is set)."""
    from .chaos import CHAOS_ENV, ChaosMiddleware
    from .security import ApiKeyMiddleware, BodyLimitMiddleware

    service.add_asgi_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    if settings.api_keys:
        keys = [k.get_secret_value() for k in settings.api_keys]
        service.add_asgi_middleware(ApiKeyMiddleware, keys=keys)
    if os.environ.get(CHAOS_ENV):
        service.add_asgi_middleware(ChaosMiddleware, path=os.environ[CHAOS_ENV])


def device_name() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
