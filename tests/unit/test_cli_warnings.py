"""What the person running `aisle` sees: Aisle's output and Aisle's own warnings, not other
libraries' deprecation notices; importing the app (as tests do) changes no warning setting."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from core.settings import get_settings

AISLE = Path(sys.executable).parent / "aisle"
NOTICE = re.compile(r"\w*(Deprecation|Future)Warning")


@pytest.mark.slow
def test_a_command_that_loads_feast_shows_no_library_notices(tmp_path):
    """`aisle features run` loads Feast, whose import turns DeprecationWarnings back on for the
    whole process (`simplefilter("once", DeprecationWarning)`); DuckDB, driven by ibis inside
    Feast's offline store, then warns while the features are materialised."""
    from features.ingest import ingest

    export = tmp_path / "shop.csv"
    export.write_text(
        "user_id,item_id,timestamp,event_type,price\n"
        "u1,i1,2024-03-01T10:00:00Z,purchase,5\n"
        "u2,i2,2024-03-01T11:00:00Z,view,3\n"
    )
    settings = get_settings(data_dir=tmp_path / "data", interactions_source=str(export))
    ingest("interactions", "2024-03-01", "2024-03-02", settings)
    args = ["features", "run", "interactions", "--start", "2024-03-01", "--end", "2024-03-02"]
    env = {**os.environ, **settings.to_env(), "COLUMNS": "200"}
    done = subprocess.run([str(AISLE), *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "user_history_fv" in done.stdout  # materialised: DuckDB ran
    assert not NOTICE.search(done.stderr), done.stderr


def test_library_notices_are_hidden_and_aisles_own_warnings_shown():
    import inspect

    import numpy

    from aisle.cli.notices import hide_library_notices

    library, ours = numpy.__file__, inspect.getfile(hide_library_notices)
    with warnings.catch_warnings(record=True) as shown:  # restores the display hook after
        warnings.simplefilter("always")
        hide_library_notices()
        warnings.warn_explicit("old", DeprecationWarning, library, 1)
        warnings.warn_explicit("soon", FutureWarning, library, 1)
        warnings.warn_explicit("ours", DeprecationWarning, ours, 1)
        warnings.warn_explicit("odd", UserWarning, library, 1)
    assert [str(w.message) for w in shown] == ["ours", "odd"]


def test_importing_the_app_changes_no_warning_setting():
    code = (
        "import warnings\n"
        "shown, filters = warnings.showwarning, list(warnings.filters)\n"
        "import aisle.cli.app\n"
        "assert warnings.showwarning is shown and warnings.filters == filters\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
