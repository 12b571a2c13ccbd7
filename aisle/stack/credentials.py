"""The stack's credentials, none ever printed or logged: the serving cluster's admin token
(AISLE_ADMIN_TOKEN, or generated once into `data/stack/admin-token`) and the Airflow UI's
`admin` password (generated into AIRFLOW_HOME before Airflow would generate and print one)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from core.files import create_private_file
from core.settings import Settings

from .. import airflow_env

ADMIN_TOKEN_FILE = "admin-token"


def admin_token(settings: Settings) -> str:
    """AISLE_ADMIN_TOKEN, or one generated once for this data folder (kept 0600)."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    path = settings.stack_dir / ADMIN_TOKEN_FILE
    if not path.exists():
        create_private_file(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


def ensure_ui_password(settings: Settings) -> Path:
    """The Airflow UI's `admin` password, generated here (file mode 0600) before the API server
    starts: Airflow's simple auth manager prints a password it generates itself to its log."""
    path = airflow_password_file(settings)
    if not path.exists():
        create_private_file(path, json.dumps({"admin": secrets.token_urlsafe(16)}) + "\n")
    return path


def airflow_password_file(settings: Settings) -> Path:
    """Where the simple auth manager keeps the generated password of the UI's `admin` user."""
    return airflow_env.airflow_home(settings) / "simple_auth_manager_passwords.json.generated"
