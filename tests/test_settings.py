"""Settings read from the environment say which variable is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_number_setting_that_is_not_a_number_names_the_variable():
    env = {**os.environ, "DB_CONN_MAX_AGE": "lots"}
    done = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "DB_CONN_MAX_AGE must be a whole number, not 'lots'." in done.stderr
