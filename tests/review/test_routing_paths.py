"""Review's routing on PostgreSQL (tuples, array parameters, one INSERT over unnest) writes
exactly what the portable ORM path writes: the same items, reasons, details, priorities
and queue counts; and reads the same routed items when it withdraws stale ones
(review/services.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from feedback import labelling, services
from feedback.models import Label, RoutingPolicy
from review import services as review_services
from review.models import Item, Queue
from tests.factories import BASE_TIME

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def simulate(project, *, sessions: int, seed: int) -> None:
    from demo.traffic import simulate_traffic

    traffic = simulate_traffic(sessions=sessions, seed=seed, batch_size=500, hard=True)
    for batch in traffic.batches:
        assert services.events_ingest(project=project, events=batch).rejected == 0
    labelling.sessions_mark_abandoned(now=BASE_TIME + timedelta(days=400))
    while labelling.sessions_derive_pending():
        pass


def routed() -> tuple[list[tuple], list[tuple]]:
    """The items (without id and creation time) by label, and the queues' counts."""
    items = sorted(
        Item.objects.values_list(
            "queue_id",
            "label_id",
            "generation_id",
            "reason",
            "reason_detail",
            "priority",
            "status",
            "content",
            "annotation_count",
            "agreement_state",
            "decision",
            "decision_reason",
            "held_out",
            "gold_answers",
        ),
        key=lambda row: (row[1], row[0]),
    )
    counts = list(Queue.objects.order_by("pk").values_list("pk", "items_open", "items_discarded"))
    return items, counts


def route_afresh(route) -> tuple[int, tuple[list[tuple], list[tuple]]]:  # noqa: ANN001
    """Items removed and counts zeroed, then every label routed by `route`; rolled back."""
    with transaction.atomic():
        Item.objects.all().delete()
        Queue.objects.update(items_open=0, items_complete=0, items_discarded=0)
        inserted = route(list(Label.objects.values_list("pk", flat=True)))
        result = routed()
        transaction.set_rollback(True)
    return inserted, result


def test_routing_on_postgresql_writes_what_the_portable_path_writes(project):
    simulate(project, sessions=40, seed=7)
    reasons = set(Label.objects.filter(needs_review=True).values_list("review_reason", flat=True))
    assert {"low_confidence", "abandoned"} <= reasons

    portable = route_afresh(review_services._labels_route_portable)  # noqa: SLF001
    postgres = route_afresh(review_services._labels_route_postgres)  # noqa: SLF001
    assert portable[0] == postgres[0] > 20
    assert postgres[1] == portable[1]
    # Routing again inserts nothing: every label already has its item.
    with transaction.atomic():
        assert (
            review_services._labels_route_postgres(  # noqa: SLF001
                list(Label.objects.values_list("pk", flat=True))
            )
            == 0
        )
        transaction.set_rollback(True)


def by_id(rows: list[dict]) -> dict[int, dict]:
    return {row["id"]: row for row in rows}


def test_stale_items_are_read_alike_on_both_paths(project):
    simulate(project, sessions=40, seed=8)
    label_ids = list(Label.objects.values_list("pk", flat=True))
    postgres = review_services._routed_items_postgres  # noqa: SLF001
    portable = review_services._routed_items_portable  # noqa: SLF001
    routed_items = postgres(label_ids)
    assert len(routed_items) > 20
    assert by_id(routed_items) == by_id(portable(label_ids))
    # A policy change re-derives labels with other meanings: routed items go stale and
    # are withdrawn (discarded and detached), as the portable path reads them too.
    RoutingPolicy.objects.filter(project=project).update(
        sends_outcome_events=True, confidence_threshold=0.6
    )
    labelling.project_rederive(projects=[project])
    while labelling.sessions_derive_pending():
        pass
    assert Item.objects.filter(status=Item.Status.DISCARDED, label=None).exists()
    after = postgres(label_ids)
    assert after and by_id(after) == by_id(portable(label_ids))
