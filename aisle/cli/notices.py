"""What the person running a command sees of warnings: Aisle's own, not other libraries'
deprecation notices (`main` installs the hook; tests that import the app see every warning)."""

from __future__ import annotations

import warnings
from pathlib import Path

from aisle.airflow_env import PROJECT_DIR

# Notices a library gives its callers' developers: what is deprecated, what will change.
LIBRARY_NOTICES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _is_aisle_file(filename: str) -> bool:
    """Whether a warning is attributed to Aisle's own code: a file in the project's folder, not
    in a virtual environment's site-packages (which may sit in that folder too)."""
    path = Path(filename)
    return (
        path.is_absolute()
        and path.resolve().is_relative_to(PROJECT_DIR)
        and "site-packages" not in path.parts
    )


def hide_library_notices() -> None:
    """Show the person running a command Aisle's own warnings, and no other library's
    deprecation notices (Evidently's, Litestar's, SQLAlchemy's inside MLflow, DuckDB's inside
    Feast): those are for their callers' developers.

    A display hook, not a warnings filter: libraries add filters of their own when imported
    (Feast's `simplefilter("once", DeprecationWarning)`), which take precedence over any added
    before them, so a filter added here is undone by the first command that loads Feast.
    """
    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, LIBRARY_NOTICES) and not _is_aisle_file(filename):
            return
        show(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning
