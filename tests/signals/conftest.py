"""Traffic for the Signals tests, sent through ingestion and derived as in production, so the
rollups (feedback/signals.py) are the ones derivation keeps.

`traffic`, in project acme, model by model (every session has one generation):

| day        | model    | feature  | generations | copied |
|------------|----------|----------|-------------|--------|
| 2026-11-20 | m-a      | SCRIPT   | 4           | 2      |
| 2026-11-20 | m-b      | summary  | 2           | 0      |
| 2026-11-21 | m-a      | SCRIPT   | 2           | 1      |
| 2026-11-21 | m-b      | summary  | 4           | 4      |

So m-a copies 3 of 6, m-b 4 of 6; over both, 7 of 12.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count

import pytest

from feedback import labelling, services
from tenancy.models import Project

SCRIPT = "<script>alert(1)</script>"
DAY_1, DAY_2 = date(2026, 11, 20), date(2026, 11, 21)
_ids = count()


def send_sessions(
    project: Project, *, day: date, model: str, feature: str, sessions: int, copied: int
) -> None:
    """`sessions` one-generation sessions of `model` on `day`, the first `copied` copied."""
    events = []
    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    for n in range(sessions):
        i = next(_ids)
        when = start + timedelta(minutes=n)
        events.append(
            {
                "id": f"g-evt-{i}",
                "type": "generation",
                "timestamp": when.isoformat(),
                "session_id": f"s{i}",
                "generation_id": f"g{i}",
                "input": [{"role": "user", "content": "Summarise the quarterly report."}],
                "output": "Revenue grew four percent.",
                "model": model,
                "metadata": {"feature": feature},
            }
        )
        if n < copied:
            events.append(
                {
                    "id": f"c-evt-{i}",
                    "type": "copy",
                    "timestamp": (when + timedelta(seconds=20)).isoformat(),
                    "session_id": f"s{i}",
                    "generation_id": f"g{i}",
                    "text": "Revenue grew",
                }
            )
    result = services.events_ingest(project=project, events=events)
    assert result.rejected == 0, result.errors


def derive_all() -> None:
    while labelling.sessions_derive_pending():
        pass


@pytest.fixture
def traffic(project):
    send_sessions(project, day=DAY_1, model="m-a", feature=SCRIPT, sessions=4, copied=2)
    send_sessions(project, day=DAY_1, model="m-b", feature="summary", sessions=2, copied=0)
    send_sessions(project, day=DAY_2, model="m-a", feature=SCRIPT, sessions=2, copied=1)
    send_sessions(project, day=DAY_2, model="m-b", feature="summary", sessions=4, copied=4)
    derive_all()
    return project
