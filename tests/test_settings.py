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


def _database_options(**env: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import config.settings as s; print(s.DATABASES['default'].get('OPTIONS', {}))",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/gleaner", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_prepared_statements_are_on_for_postgresql_unless_switched_off():
    assert "'prepare_threshold': 5" in _database_options()
    assert "prepare_threshold" not in _database_options(DB_PREPARED_STATEMENTS="0")
    assert "prepare_threshold" not in _database_options(DATABASE_URL="sqlite:///unused.sqlite3")
