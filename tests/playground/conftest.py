from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from django.core import signals

from feedback import services

T = TypeVar("T")
EVENTS_PATH = "/api/v1/events"


class IngestWatch:
    """Sees the live server finish each POST /api/v1/events (fetches and beacons alike).

    The browser sends in its own time (the 2 s batch timer; a beacon after the page is
    gone), and Playwright does not see beacons. Reading the database only once a request has
    finished and none is in flight also keeps the test off SQLite's shared in-memory test
    database while the server writes to it (a reader there fails the writer: "locked").
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._local = threading.local()
        self.in_flight = 0
        self.finished: list[str] = []  # query strings: "key=..." for beacons

    def started(self, sender: Any, environ: dict, **kwargs: Any) -> None:
        if environ.get("PATH_INFO") == EVENTS_PATH and environ.get("REQUEST_METHOD") == "POST":
            self._local.query = environ.get("QUERY_STRING", "")
            with self._changed:
                self.in_flight += 1

    def ended(self, sender: Any, **kwargs: Any) -> None:
        query = getattr(self._local, "query", None)
        if query is None:
            return
        self._local.query = None
        with self._changed:
            self.in_flight -= 1
            self.finished.append(query)
            self._changed.notify_all()

    @property
    def beacons(self) -> int:
        return sum("key=" in query for query in self.finished)

    def poll(self, read: Callable[[], T], until: Callable[[T], bool], timeout: float = 20.0) -> T:
        """`read()` after each finished ingestion request until `until(value)` holds."""
        seen = -1
        value: T | None = None
        with self._changed:
            while True:
                done = len(self.finished)
                if done != seen and self.in_flight == 0:
                    seen = done
                    value = read()
                    if until(value):
                        return value
                if not self._changed.wait(timeout):
                    pytest.fail(f"Timed out waiting for the browser's events; last: {value!r}")


@pytest.fixture
def ingest_watch() -> Iterator[IngestWatch]:
    watch = IngestWatch()
    signals.request_started.connect(watch.started)
    signals.request_finished.connect(watch.ended)
    yield watch
    signals.request_started.disconnect(watch.started)
    signals.request_finished.disconnect(watch.ended)


def generation_ingest(project, *, session_id: str, generation_id: str, output: str) -> None:
    """The server side of the split: the generation, sent in-process with full rights."""
    result = services.events_ingest(
        project=project,
        events=[
            {
                "id": f"evt_{generation_id}",
                "type": "generation",
                "timestamp": "2026-12-01T10:00:00Z",
                "session_id": session_id,
                "generation_id": generation_id,
                "input": "When is the meeting?",
                "output": output,
            }
        ],
    )
    assert result.accepted == 1, result.errors
