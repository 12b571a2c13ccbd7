"""Promotion and rollback as plain steps: what `aisle promote`, `aisle rollback` and the
`promote_model` DAG call. The backend (local processes or Kubernetes) comes from the settings."""

from __future__ import annotations

from typing import Any

from core.audit import AuditLog
from core.settings import Settings

from .admin import GatewayAdmin
from .promotion import Promoter
from .slots import LocalSlots, Slots


def slots_for(settings: Settings) -> Slots:
    if settings.serving_backend == "kubernetes":
        from .kubernetes import KubernetesSlots, load_client_configuration

        load_client_configuration()
        return KubernetesSlots(settings.kubernetes_namespace)
    return LocalSlots(settings)


def promoter(settings: Settings, who: str | None = None) -> Promoter:
    return Promoter(settings, slots_for(settings), GatewayAdmin(settings), AuditLog(settings, who))


def experiment_runner(settings: Settings, who: str | None = None):
    from .experiment_control import ExperimentRunner

    return ExperimentRunner(
        settings, slots_for(settings), GatewayAdmin(settings), AuditLog(settings, who)
    )


def start_experiment_step(
    model: str, version: str | None, settings: Settings, who: str | None = None, **options: Any
) -> dict[str, Any]:
    """Start an experiment of `version` (None: the challenger) against the champion."""
    return experiment_runner(settings, who).start(model, version, **options)


def conclude_experiment_step(
    model: str, action: str, reason: str, settings: Settings, who: str | None = None
) -> dict[str, Any]:
    """End the model's experiment by its decision: promote, or stop (champion keeps it all)."""
    return experiment_runner(settings, who).conclude(model, action, reason)


def promote_step(
    model: str, version: str | None, settings: Settings, who: str | None = None
) -> dict[str, Any]:
    """Promote `version` (None: the challenger) of `model`; `who` acts (default: core.actor)."""
    return promoter(settings, who).promote(model, version).to_dict()


def promote_or_experiment_step(
    model: str,
    version: str | None,
    settings: Settings,
    who: str | None = None,
    mode: str | None = None,
) -> dict[str, Any]:
    """What promote_model does with a challenger, by `mode` (None: AISLE_PROMOTION__MODE):
    blue-green promotion, or an experiment whose decision moves the alias later."""
    if (mode or settings.promotion.mode) == "blue-green":
        return promote_step(model, version, settings, who)
    from .promotion import PromotionError

    try:
        experiment = start_experiment_step(model, version, settings, who)
    except PromotionError as exc:
        return {"model": model, "version": version, "result": "rejected", "reason": str(exc)}
    return {
        "model": model,
        "version": experiment["treatment_version"],
        "result": "experiment_started",
        "reason": f"experiment {experiment['id']}: {experiment['share']:.0%} of units, "
        f"judged on {experiment['metric']} by the experiment_monitor DAG",
        "experiment": experiment["id"],
    }


def rollback_step(model: str, settings: Settings) -> dict[str, Any]:
    return promoter(settings).rollback(model).to_dict()


def promotions_to_run(
    extras: list[dict[str, Any]], params: dict[str, Any] | None
) -> list[tuple[str, str | None]]:
    """(model, version) pairs a promote_model run handles: the newest challenger per model among
    the triggering Asset events, else the params of a manual run (version None: the alias)."""
    newest: dict[str, str] = {}
    for extra in extras:
        if extra and extra.get("model") and extra.get("version"):
            model, version = extra["model"], str(extra["version"])
            if model not in newest or int(version) > int(newest[model]):
                newest[model] = version
    if newest:
        return sorted(newest.items())
    params = params or {}
    return [(params.get("model") or "recommender", params.get("version") or None)]
