"""Real Celery worker processes for end-to-end tests (PostgreSQL + Redis), as a plugin of
tests/conftest.py:

- `worker`: one worker on the test database and the shared Redis; yields its log.
- `start_worker`: a factory for workers on any Redis (e.g. a `private_redis`), optionally
  with beat (`-B`) on a short derivation sweep; each is stopped at the end of the test.
- `private_redis`: a redis-server of the test's own on a free port, which the test may
  stop and start again (a broker outage) without disturbing anyone else's Redis.
- `use_broker(url)`: this process's Celery app publishes to `url` for a while.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection

from config.celery import app
from core import scheduling
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


def free_port() -> int:
    """A TCP port nothing listens on right now (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start_worker(settings, tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a worker on the test database and `redis_url` (broker and cache).

    `beat=True` embeds beat (`-B`) with the derivation sweep every `sweep_seconds`;
    `pool` is the worker pool ("solo" runs tasks in the consumer process, "prefork" in a
    child as in production); `env` adds environment variables (settings) of the worker.
    """
    settings.GLEANER_DERIVE_DEBOUNCE_SECONDS = DEBOUNCE
    settings.MEDIA_ROOT = tmp_path / "media"  # export files, shared with the worker
    started: list[WorkerProcess] = []

    def start(
        redis_url: str,
        *,
        beat: bool = False,
        sweep_seconds: int = 2,
        pool: str = "solo",
        name: str = "worker",
        env: dict[str, str] | None = None,
    ) -> WorkerProcess:
        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "GLEANER_DERIVE_DEBOUNCE_SECONDS": str(DEBOUNCE),
            "GLEANER_DERIVE_SWEEP_SECONDS": str(sweep_seconds),
            "MEDIA_ROOT": str(tmp_path / "media"),
            **(env or {}),
        }
        log = tmp_path / f"{name}.log"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
        ]
        if beat:  # its schedule file goes with the test, not into the work tree
            command += ["-B", "--schedule", str(tmp_path / f"{name}-beat-schedule")]
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
        )
        handle = WorkerProcess(process, log)
        started.append(handle)
        wait_until(lambda: "ready" in log.read_text(), what="the worker to start")
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def worker(settings, start_worker):
    app.control.purge()
    cache.delete(SCHEDULED_MARK)
    scheduling.windows_forget()
    return start_worker(settings.REDIS_URL).log


@dataclass
class PrivateRedis:
    """A redis-server of one test: no persistence, its own port and directory."""

    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.directory / "redis.log").open("a")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, timeout=10, what="redis-server to accept connections")

    def stop(self) -> None:
        """Stop it the way an outage does: at once, losing everything it held."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = PrivateRedis(port=free_port(), directory=directory)
    server.start()
    yield server
    server.stop()


@contextmanager
def use_broker(url: str) -> Iterator[None]:
    """Publish this process's tasks to `url` inside the block, also where tasks otherwise
    run in-process (Celery caches its connection and producer pools, so they are dropped
    on the way in and out)."""
    saved = app.conf.broker_url, app.conf.broker_write_url, app.conf.task_always_eager

    def reset_pools() -> None:
        app._pool = None  # noqa: SLF001 - Celery's own after-fork reset does the same
        app.amqp._producer_pool = None  # noqa: SLF001

    app.conf.broker_url, app.conf.broker_write_url, app.conf.task_always_eager = url, None, False
    reset_pools()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_write_url, app.conf.task_always_eager = saved
        reset_pools()
