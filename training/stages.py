"""One shape for every model: its training stages, as the training DAGs, `aisle train` and the
gate task all run them.

    build_training_set(end)  -> path        the model's windows before `end`, with metadata
    train(path, config)      -> trained     one MLflow run: run id, checkpoint, test metrics
    register(trained)        -> registered  the checkpoint logged as the run's model, a version
    gate(registered)         -> decision    passed: the alias `challenger` (training/gate.py)

A model is a package `training/<name>/` whose `stages.py` defines `STAGES = ModelStages(...)`
and whose modules provide what the stages call:

    dataset.py    build_training_set(settings, dataset, windows) -> Path
    pipeline.py   train_step(path, config, settings, device, on_progress) -> dict
                  load_checkpoint(path), log_model(path, checkpoint), version_tags(checkpoint)
    gate.py       gate_step(training_set, version, settings) -> dict

`all_models()` finds every such package, so a third model is one new package and its DAG file
(README "Adding a model"). `stages.py` imports nothing heavy: DAG files read it at parse time.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from core.clock import When, as_utc
from core.settings import Settings, get_settings

from .training_sets import Windows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigParam:
    """A training option a DAG run's params and the CLI may change (an integer; None keeps the
    model's default)."""

    name: str
    description: str
    minimum: int = 0


@dataclass(frozen=True)
class ModelStages:
    """A model's name and the facts its stages need; the stages themselves are methods."""

    name: str  # the registered model, its MLflow experiment, its DAGs and CLI command
    package: str  # where its dataset, pipeline and gate modules live
    source_setting: str  # the Settings field naming the source of its data
    table: str  # the curated table it learns from (the drift monitor watches it)
    time_column: str  # that table's event time
    windows: Callable[[datetime, Settings], Windows]  # its fit / valid / test cut before an end
    params: tuple[ConfigParam, ...] = ()

    def module(self, name: str) -> ModuleType:
        return importlib.import_module(f"{self.package}.{name}")

    def build_training_set(
        self, end: When, settings: Settings | None = None, dataset: str | None = None
    ) -> str:
        """The training set of the data ending at `end` (a UTC day boundary)."""
        from features.sources import resolve

        settings = settings or get_settings()
        dataset = dataset or resolve(getattr(settings, self.source_setting)).dataset
        windows = self.windows(as_utc(end), settings)
        path = self.module("dataset").build_training_set(settings, dataset, windows)
        log.info("%s training set %s (windows %s)", self.name, path, windows.to_dict())
        return str(path)

    def train(
        self,
        training_set: str | Path,
        config: dict[str, Any] | None = None,
        settings: Settings | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """One MLflow run; `options` are the pipeline's own (device, progress callback)."""
        return self.module("pipeline").train_step(training_set, config, settings, **options)

    def register(self, trained: dict[str, Any], settings: Settings | None = None) -> dict:
        return register_step(self, trained["run_id"], trained["checkpoint"], settings)

    def gate(self, registered: dict[str, Any], settings: Settings | None = None) -> dict:
        gate_step = self.module("gate").gate_step
        return gate_step(registered["training_set"], registered["version"], settings)

    def config_from(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """The training options among a DAG run's params."""
        names = {p.name for p in self.params}
        return {k: v for k, v in (params or {}).items() if k in names}


def register_step(
    stages: ModelStages, run_id: str, checkpoint: str | Path, settings: Settings | None = None
) -> dict[str, Any]:
    """Log the checkpoint as the run's model and register it as a new version, tagged with its
    metrics and lineage. The alias `challenger` is the gate's to give (training/gate.py)."""
    import mlflow

    from .tracking import tag_version, use_tracking

    settings = settings or get_settings()
    use_tracking(settings, stages.name)
    pipeline = stages.module("pipeline")
    trained = pipeline.load_checkpoint(checkpoint)
    lineage = trained.metadata["lineage"]
    if lineage["mlflow_run_id"] != run_id:
        raise ValueError(
            f"{checkpoint} was trained in run {lineage['mlflow_run_id']}, not {run_id}"
        )
    with mlflow.start_run(run_id=run_id):
        logged = pipeline.log_model(Path(checkpoint), trained)
    version = str(logged.registered_model_version)
    tag_version(stages.name, version, {**pipeline.version_tags(trained), **lineage})
    log.info("registered %s version %s", stages.name, version)
    return {
        "registered_model": stages.name,
        "version": version,
        "training_set": lineage["training_set"],
        "model_uri": logged.model_uri,
        "run_id": run_id,
    }


@cache
def all_models() -> dict[str, ModelStages]:
    """Every model package under training/ (one with a `stages.py`), by name."""
    import training

    found = {}
    for package in pkgutil.iter_modules(training.__path__):
        if package.ispkg and importlib.util.find_spec(f"training.{package.name}.stages"):
            stages = importlib.import_module(f"training.{package.name}.stages").STAGES
            found[stages.name] = stages
    return dict(sorted(found.items()))


def model_stages(name: str) -> ModelStages:
    """The stages of model `name`; an unknown name is a clear error naming the known ones."""
    models = all_models()
    if name not in models:
        raise ValueError(f"unknown model {name!r}; one of {', '.join(models)}")
    return models[name]
