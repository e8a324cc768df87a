"""End to end with a real Celery worker process on real Redis and PostgreSQL."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from feedback.models import Label, Session
from review.models import Item
from tests.factories import edit, event, generation
from tests.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def post_events(live_server, key: str, events: list[dict]) -> dict:
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/events",
        data=json.dumps({"events": events}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_worker_derives_labels_and_routes_items_from_events_sent_over_http(
    live_server, worker, api_key
):
    output = "Revenue grew four percent, led by the new subscription tier; costs were flat."
    burst = [
        [generation("g1", session="e2e", output=output, t=0)],
        [event("view", session="e2e", generation_id="g1", dwell_ms=800, t=1)],
        # a sentence added, no fact fixed: a low-confidence edit pair, must be reviewed
        [edit("g1", output + "\n\nShipping was faster than last year.", session="e2e", t=2)],
        [event("regenerate", session="e2e", generation_id="g1", t=3)],
        [generation("g2", session="e2e", output=output.upper(), replaces="g1", t=4)],
    ]
    for batch in burst:
        assert post_events(live_server, api_key, batch)["accepted"] == 1

    session = wait_until(
        lambda: Session.objects.filter(external_id="e2e", derived_at__isnull=False).first(),
        what="the session to be derived",
    )
    assert session.derived_changes == session.changes
    cosmetic = Label.objects.get(session=session, rule="edit_correction")
    assert cosmetic.needs_review
    item = wait_until(lambda: Item.objects.filter(label=cosmetic).first(), what="the queue item")
    assert item.queue.reason == "low_confidence"

    # Debounce: the five batches above arrived inside one window, so the worker derived the
    # session once, not five times.
    derived_counts = [
        int(n)
        for n in re.findall(
            r"derive_pending_sessions\[[^\]]+\] succeeded in [\d.]+s: (\d+)", worker.read_text()
        )
    ]
    assert sum(derived_counts) == 1, worker.read_text()[-2000:]
