"""The environment every component starts with: the settings (Airflow's among them, through
`airflow_env.subprocess_env`), the admin token, and a share of the cores for the numeric
libraries. Computed, never written into this process's own environment."""

from __future__ import annotations

import os

from pydantic import SecretStr

from core.settings import Settings

from .. import airflow_env
from .credentials import admin_token

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def stack_env(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """The settings with the admin token in them, and the environment every component gets."""
    settings = settings.model_copy(update={"admin_token": SecretStr(admin_token(settings))})
    env = {
        **airflow_env.subprocess_env(settings),
        **settings.secrets_env(),
        **thread_env(settings),
        "PYTHONUNBUFFERED": "1",
    }
    return settings, env


def thread_env(settings: Settings) -> dict[str, str]:
    """How many threads each component's numeric libraries start (torch reads OMP_NUM_THREADS):
    `settings.threads_per_task()`, unless the environment already says."""
    threads = str(settings.threads_per_task())
    return {name: os.environ.get(name, threads) for name in THREAD_VARIABLES}
