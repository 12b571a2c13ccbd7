"""Who acts, for the audit logs (promotions, erasures)."""

from __future__ import annotations

import getpass
import os


def actor() -> str:
    """AISLE_ACTOR (an Airflow task sets its dag and run ids), else the OS user."""
    if os.environ.get("AISLE_ACTOR"):
        return os.environ["AISLE_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"
