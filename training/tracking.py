"""MLflow plumbing shared by both models: where tracking lives, lineage tags, aliases.

Local profile: a SQLite store under <data_dir>/mlflow with artifacts beside it (nothing to
install). Production: AISLE_MLFLOW_TRACKING_URI, a PostgreSQL URL or an MLflow server.
"""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from core.settings import Settings

CHALLENGER = "challenger"
CHAMPION = "champion"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def point_at_store(settings: Settings) -> str:
    """Point mlflow's tracking and its model registry at the settings' store; returns the URI."""
    import mlflow

    uri = settings.tracking_uri
    if uri.startswith("sqlite:"):
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def use_tracking(settings: Settings, experiment: str) -> str:
    """Point mlflow at the settings' store and experiment; returns the experiment id."""
    import mlflow

    uri = point_at_store(settings)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        location = None if uri.startswith("http") else f"{settings.artifacts_uri}/{experiment}"
        experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit() -> str:
    """The commit the code ran from ('unknown' outside a git checkout); '+dirty' if edited."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def set_alias(name: str, alias: str, version: str, tags: dict[str, Any] | None = None) -> None:
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, version)
    tag_version(name, version, tags or {})


def data_end(name: str, version: str) -> datetime | None:
    """The version's `data_interval_end` tag: the end of the data it was trained and tested on
    (None when it has none)."""
    from mlflow import MlflowClient

    from core.clock import as_utc

    end = MlflowClient().get_model_version(name, version).tags.get("data_interval_end")
    return as_utc(end) if end else None


def tag_version(name: str, version: str, tags: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def feature_fingerprint(settings: Settings) -> str:
    """The sha256 of the Feast definitions last applied (lineage for a training run)."""
    from features.store import applied_fingerprint

    return applied_fingerprint(settings) or "not applied"


def lineage(settings: Settings, metadata: dict[str, Any], training_set: Path) -> dict[str, str]:
    """What a training run was made from: data set, feature service and definitions digest, the
    windows of its training set (`metadata` as written beside it), the set's path, git commit."""
    windows = metadata["windows"]
    return {
        "dataset": metadata["dataset"],
        "feature_service": metadata["feature_service"],
        "feature_definitions_sha256": feature_fingerprint(settings),
        "data_interval_end": windows["end"],
        "train_end": windows["train_end"],
        "valid_end": windows["valid_end"],
        "training_set": str(training_set),
        "git_commit": git_commit(),
    }


def config_with(default: Any, changes: Any, model: str) -> Any:
    """`default` (a dataclass config) with `changes` applied: a config of the same type is taken
    as it is, a dict (a DAG's params, a setting) changes the fields it names; None values keep
    the default; a list given for a tuple field (JSON has no tuples) becomes a tuple."""
    from dataclasses import fields, replace

    if isinstance(changes, type(default)):
        return changes
    known = {f.name for f in fields(default)}
    given = {k: v for k, v in (changes or {}).items() if v is not None}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"unknown {model} settings {unknown}; known: {sorted(known)}")
    for name, value in given.items():
        if isinstance(getattr(default, name), tuple) and isinstance(value, list):
            given[name] = tuple(value)
    return replace(default, **given)


def run_config(default: Any, changes: Any, model: str, settings: Settings) -> Any:
    """The configuration a training run uses: `default`, changed by the setting
    `training_config[model]` (a deployment's choice), then by `changes` (the run's own)."""
    configured = config_with(default, settings.training_config.get(model), model)
    return config_with(configured, changes, model)


def training_end(params: Any, triggering_asset_events: Any, data_interval_end: Any) -> Any:
    """Where a training run's data ends: the `end` param of a manual run, else the latest `end`
    of the retrain Asset events that triggered it (drift), else the data interval's end."""
    if params and params.get("end"):
        return params["end"]
    extras = [e.extra for events in (triggering_asset_events or {}).values() for e in events]
    ends = [extra["end"] for extra in extras if extra and extra.get("end")]
    return max(ends) if ends else data_interval_end
