from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from feedback.models import Event, Generation, Session
from tests.factories import edit, generation

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_identical_batches_sent_at_the_same_moment_store_each_event_once(api_key):
    batch = []
    for s in range(25):
        batch.append(generation(f"g{s}", session=f"s{s}"))
        batch.extend(edit(f"g{s}", f"text {i}", session=f"s{s}", t=i + 1) for i in range(19))
    senders = 4
    barrier = threading.Barrier(senders)
    results: list = [None] * senders

    def send(slot: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        try:
            barrier.wait(timeout=30)
            response = client.post("/api/v1/events", {"events": batch}, format="json")
            results[slot] = (response.status_code, response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert [status for status, _ in results] == [200] * senders
    assert sum(body["accepted"] for _, body in results) == len(batch)
    assert sum(body["duplicates"] for _, body in results) == len(batch) * (senders - 1)
    assert Event.objects.count() == len(batch)
    assert Generation.objects.count() == 25
    assert Session.objects.count() == 25
    assert not Event.objects.filter(generation__isnull=True).exists()
