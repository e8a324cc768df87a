"""What every benchmark does first: Django set up on the configured database, migrated,
and a fresh project per run (so runs never collide and data is reused only on purpose)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def setup() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def new_project(kind: str):  # noqa: ANN201 - a feedback.models.Project (Django not set up yet)
    from feedback import services

    project, _ = services.project_create(slug=f"bench-{kind}-{time.strftime('%Y%m%d%H%M%S')}")
    return project


def analyze() -> None:
    """Refresh PostgreSQL's planner statistics after a bulk load, as autovacuum would."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def review_queue(  # noqa: ANN201 - a review.models.Queue
    project,  # noqa: ANN001
    *,
    key: str = "better",
    choices: tuple[str, ...] = ("left", "right", "tie", "both bad"),
):
    """A three-annotation queue with a choice question (`key`) and a 1..5 rating."""
    from review.models import Question, Queue

    queue = Queue.objects.create(project=project, name="bench", annotations_per_item=3)
    Question.objects.create(
        queue=queue, key=key, type="choice", prompt="Which is better?", choices=list(choices)
    )
    Question.objects.create(
        queue=queue,
        key="quality",
        type="rating",
        prompt="Quality",
        min_value=1,
        max_value=5,
        level="ordinal",
        position=1,
    )
    return queue


class Gunicorn:
    """Gleaner as deployed: gunicorn with DEBUG off, on the bench's database and Redis (from
    the environment), on a free local port. `options` are gunicorn's (workers, threads, ...);
    `env` adds to or overrides the environment; the log is `<tmp>/gleaner-<name>-gunicorn.log`.
    """

    def __init__(self, *, name: str, options: list[str], env: dict[str, str] | None = None) -> None:
        import socket
        import tempfile
        from pathlib import Path

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.options = options
        self.env = env or {}
        self.log_path = Path(tempfile.gettempdir()) / f"gleaner-{name}-gunicorn.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import sys
        import urllib.request
        from pathlib import Path

        env = {
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-not-a-secret",
            "SECURE_SSL_REDIRECT": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            **self.env,
        }
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(  # noqa: S603 - our own command line
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "120",
                *self.options,
            ],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn exited: see {self.log_path}")
            try:
                with urllib.request.urlopen(  # noqa: S310 - our own local server
                    f"http://127.0.0.1:{self.port}/healthz", timeout=2
                ):
                    return
            except OSError:
                time.sleep(0.2)  # polling gunicorn's start
        sys.exit("gunicorn did not answer in 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        self.log.close()


def postgres_cpu_seconds() -> float | None:
    """CPU seconds used so far by the PostgreSQL processes of this machine (Linux /proc),
    or None where there are none to read (a server elsewhere): with the project's own CPU
    time, where a request's or a session's time goes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            if not fields[0].endswith("(postgres"):
                continue
            values = fields[1].split()
        except OSError:  # the process ended meanwhile
            continue
        found = True
        total += int(values[11]) + int(values[12])  # utime, stime
    return total / ticks if found else None
