"""A real Celery worker process for end-to-end tests (PostgreSQL + Redis), as a plugin of
tests/conftest.py: the `worker` fixture starts one on the test database and yields its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection

from config.celery import app
from feedback.labelling import SCHEDULED_MARK

ROOT = Path(__file__).resolve().parents[1]
DEBOUNCE = 2


def wait_until(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)  # polling interval, not a wait for an outcome
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def worker(settings, tmp_path):
    settings.GLEANER_DERIVE_DEBOUNCE_SECONDS = DEBOUNCE
    settings.MEDIA_ROOT = tmp_path / "media"  # export files, shared with the worker
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "GLEANER_DERIVE_DEBOUNCE_SECONDS": str(DEBOUNCE),
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    app.control.purge()
    cache.delete(SCHEDULED_MARK)
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_until(lambda: "ready" in log.read_text(), what="the worker to start")
    yield log
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
