"""A lead's exclusion of an annotator (review/exclusions.py, review/gate.py): the gate and
agreement figures are exactly those without the annotator's annotations, revoking restores
them, and the agreement page's forms are a lead's only and refuse bad input by field."""

from __future__ import annotations

import random

import pytest
from django.urls import reverse

from review import claims, gate
from review.exclusions import annotator_exclude, annotator_exclusion_revoke
from review.models import AgreementSnapshot, Annotation, AnnotatorExclusion, Item, Question, Queue
from review.services import items_add
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

OUTCOME = ["agreement", "agreement_state", "decision", "decision_reason", "preferred_response"]
GOOD, WEAK = ("ann", "ben", "cat"), "dave"


def make_reviewers(django_user_model) -> dict:
    return {name: make_user(django_user_model, name) for name in (*GOOD, WEAK)}


@pytest.fixture
def reviewers(django_user_model, project):
    return make_reviewers(django_user_model)


def seeded_queue(project, reviewers, *, items: int = 40, seed: int = 7) -> Queue:
    """A yes/no queue (3 answers an item, alpha minimum 0.667) where the three good
    reviewers answer every item right 96% of the time and dave 40% of the time; dave is the
    fourth answer on even items and, in place of cat, the third on every third odd one
    (those fall short of three counted answers once he is excluded)."""
    queue = Queue.objects.create(
        project=project, name="Checks", annotations_per_item=3, min_alpha=0.667
    )
    Question.objects.create(
        queue=queue, key="verdict", type="choice", prompt="Right?", choices=["yes", "no"]
    )
    Question.objects.create(
        queue=queue,
        key="stars",
        type="rating",
        prompt="Stars",
        min_value=1,
        max_value=5,
        level="ordinal",
        position=1,
    )
    ids = items_add(
        queue=queue,
        items=[{"content": {"prompt": f"Q{n}?", "responses": ["A", "B"]}} for n in range(items)],
    )
    rng = random.Random(seed)
    rows = []
    for n, item_id in enumerate(sorted(ids)):
        truth = rng.choice(["yes", "no"])
        names = [*GOOD, WEAK] if n % 2 == 0 else ["ann", "ben", WEAK if n % 3 == 0 else "cat"]
        for name in names:
            right = rng.random() < (0.4 if name == WEAK else 0.96)
            verdict = truth if right else ("no" if truth == "yes" else "yes")
            stars = rng.randint(3, 5) if verdict == "yes" else rng.randint(1, 2)
            values = {"verdict": verdict, "stars": stars}
            rows.append(
                Annotation(
                    item_id=item_id,
                    queue=queue,
                    user=reviewers[name],
                    answers=values,
                    values=values,
                )
            )
        Item.objects.filter(pk=item_id).update(
            annotation_count=len(names), status=Item.Status.COMPLETE
        )
    Annotation.objects.bulk_create(rows)
    return queue


def figures(snapshot: AgreementSnapshot) -> dict:
    """What a recomputation decided: the snapshot's results but dave's own row and the
    record of who is excluded, and every item's written outcome."""
    results = {k: v for k, v in snapshot.results.items() if k != "excluded_users"}
    results["annotators"] = {k: v for k, v in results["annotators"].items() if k != WEAK}
    items = list(Item.objects.filter(queue=snapshot.queue).order_by("id").values_list(*OUTCOME))
    return {"results": results, "items": items}


def alpha(snapshot: AgreementSnapshot) -> float:
    return snapshot.results["questions"]["verdict"]["alpha"]


def test_excluding_an_annotator_decides_as_if_their_annotations_were_never_given(
    project, reviewers, carol
):
    queue = seeded_queue(project, reviewers)
    with_dave = gate.queue_agreement_recompute(queue=queue)
    before = figures(with_dave)
    assert with_dave.results["annotators"][WEAK]["flagged"] is True
    assert alpha(with_dave) < queue.min_alpha  # dave keeps the queue under its minimum
    counts_before = dict(
        Annotation.objects.filter(item__queue=queue, user=reviewers[WEAK]).values_list(
            "item_id", "item__annotation_count"
        )
    )

    annotator_exclude(queue=queue, username=WEAK, lead=carol, reason="Answers at random.")
    excluded = gate.queue_agreement_recompute(queue=queue)
    after = figures(excluded)
    assert alpha(excluded) >= queue.min_alpha > alpha(with_dave)
    assert excluded.results["annotators"][WEAK]["excluded"] is True
    assert excluded.results["annotators"][WEAK]["alpha_without"] == alpha(excluded)
    assert excluded.results["excluded_users"] == [reviewers[WEAK].pk]
    decisions = {row[2] for row in after["items"]}
    assert Item.Decision.ACCEPTED in decisions and Item.Decision.REJECTED in decisions
    # The odd items dave answered in place of cat have two counted answers of three.
    assert ("pending", "", "needs more annotations") in {row[1:4] for row in after["items"]}

    # The exclusion took dave's answers off the items' counts (and opened the short ones).
    theirs = Annotation.objects.filter(item__queue=queue, user=reviewers[WEAK])
    assert sorted(theirs.values_list("item__annotation_count", flat=True)) == sorted(
        n - 1 for n in counts_before.values()
    )
    # The reference: the same queue with dave's annotations gone (counts as they are now).
    AnnotatorExclusion.objects.filter(queue=queue).delete()
    theirs.delete()
    without = gate.queue_agreement_recompute(queue=queue)
    reference = figures(without)
    assert reference == after
    assert WEAK not in without.results["annotators"]
    assert before != after


def test_items_left_short_open_again_for_others_and_the_excluded_get_nothing(
    project, reviewers, carol, django_user_model
):
    queue = seeded_queue(project, reviewers, seed=5)
    Question.objects.filter(queue=queue).update(required=False)
    queue.members.add(*reviewers.values())
    gate.queue_agreement_recompute(queue=queue)
    short = set(
        Item.objects.filter(
            queue=queue, annotations__user=reviewers[WEAK], annotation_count=3
        ).values_list("pk", flat=True)
    )
    assert short  # the odd items dave answered in place of cat
    newcomer = make_user(django_user_model, "eve")
    queue.members.add(newcomer)
    assert claims.item_claim_next(queue=queue, user=newcomer) is None  # all full

    annotator_exclude(queue=queue, username=WEAK, lead=carol, reason="Random answers.")
    queue.refresh_from_db()
    reopened = Item.objects.filter(queue=queue, status=Item.Status.OPEN)
    assert set(reopened.values_list("pk", flat=True)) == short
    assert queue.items_open == len(short)
    assert set(reopened.values_list("annotation_count", flat=True)) == {2}
    claim = claims.item_claim_next(queue=queue, user=newcomer)
    assert claim is not None and claim.item_id in short
    # dave is offered nothing in the queue while excluded, even an item he has not seen.
    fresh = items_add(queue=queue, items=[{"content": {"prompt": "New?", "responses": ["A"]}}])
    assert claims.item_claim_next(queue=queue, user=reviewers[WEAK]) is None

    annotator_exclusion_revoke(queue=queue, username=WEAK, lead=carol)
    queue.refresh_from_db()
    assert set(Item.objects.filter(pk__in=short).values_list("annotation_count", "status")) == {
        (3, Item.Status.COMPLETE)
    }
    assert queue.items_open == 1  # the new item
    again = claims.item_claim_next(queue=queue, user=reviewers[WEAK])
    assert again is not None and again.item_id in fresh


def test_revoking_an_exclusion_restores_every_figure(project, reviewers, carol):
    queue = seeded_queue(project, reviewers, seed=11)
    before = figures(gate.queue_agreement_recompute(queue=queue))
    full = gate.queue_agreement_recompute(queue=queue).results

    annotator_exclude(queue=queue, username=WEAK, lead=carol, reason="Careless.")
    assert figures(gate.queue_agreement_recompute(queue=queue)) != before
    exclusion = annotator_exclusion_revoke(queue=queue, username=WEAK, lead=carol)

    restored = gate.queue_agreement_recompute(queue=queue)
    assert figures(restored) == before
    assert restored.results["annotators"][WEAK] == full["annotators"][WEAK]
    assert "excluded_users" not in restored.results
    exclusion.refresh_from_db()
    assert exclusion.revoked_by == carol and exclusion.revoked_at is not None
    # Recorded: excluding again makes a second row; the first is kept.
    annotator_exclude(queue=queue, username=WEAK, lead=carol, reason="Still careless.")
    assert AnnotatorExclusion.objects.filter(queue=queue, user=reviewers[WEAK]).count() == 2


def test_an_exclusion_is_read_once_per_recomputation(
    project, reviewers, carol, django_assert_max_num_queries
):
    queue = seeded_queue(project, reviewers, items=12)
    gate.queue_agreement_recompute(queue=queue)
    Item.objects.filter(queue=queue).update(agreement=None)  # every outcome to write again
    plain = _queries(queue)
    annotator_exclude(queue=queue, username=WEAK, lead=carol, reason="Careless.")
    Item.objects.filter(queue=queue).update(agreement=None)
    assert _queries(queue) == plain  # the exclusions are read by the one query always made


def _queries(queue: Queue) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        gate.queue_agreement_recompute(queue=queue)
    return len(captured)


def test_the_service_refuses_bad_input_by_field(project, reviewers, carol, bob):
    queue = seeded_queue(project, reviewers, items=4)
    for username, reason, field in [
        (WEAK, "", "reason"),
        (WEAK, "   ", "reason"),
        (WEAK, "x" * 2001, "reason"),
        (WEAK, "nul \x00", "reason"),
        (WEAK, "cut \ud83d", "reason"),
        ("nobody", "Careless.", "username"),
        ("bob", "Careless.", "username"),  # in the project, never in this queue
        ("da\x00ve", "Careless.", "username"),
        ("d" * 10_000, "Careless.", "username"),
    ]:
        with pytest.raises(ValueError, match=f"^{field}: "):
            annotator_exclude(queue=queue, username=username, lead=carol, reason=reason)
    annotator_exclude(queue=queue, username=WEAK, lead=carol, reason="Careless.")
    with pytest.raises(ValueError, match="^username: .*excluded already"):
        annotator_exclude(queue=queue, username=WEAK, lead=carol, reason="Again.")
    with pytest.raises(ValueError, match="^username: .*not excluded"):
        annotator_exclusion_revoke(queue=queue, username="ann", lead=carol)


def test_the_agreement_page_excludes_and_counts_again(
    client, project, reviewers, carol, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the recomputation runs after the commit
    queue = seeded_queue(project, reviewers)
    gate.queue_agreement_recompute(queue=queue)
    client.force_login(carol)
    page = reverse("review:agreement", args=[queue.pk])

    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            reverse("review:annotator_exclude", args=[queue.pk]),
            {"username": WEAK, "reason": "Answers at <b>random</b>."},
        )
    assert answer.status_code == 302 and answer["Location"] == page
    shown = client.get(page).content.decode()
    assert "dave&#x27;s answers no longer count" in shown
    assert "Answers at &lt;b&gt;random&lt;/b&gt;." in shown
    assert 'aria-label="Count dave\'s answers again"' in shown
    assert "Excluded by a lead: dave." in shown  # the annotator chart says it too
    assert ">⚑ flagged, excluded</text>" in shown
    latest = AgreementSnapshot.objects.filter(queue=queue).latest()
    assert latest.results["excluded_users"] == [reviewers[WEAK].pk]

    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            reverse("review:annotator_include", args=[queue.pk]), {"username": WEAK}
        )
    assert answer.status_code == 302
    latest = AgreementSnapshot.objects.filter(queue=queue).latest()
    assert "excluded_users" not in latest.results
    shown = client.get(page).content.decode()
    assert "dave&#x27;s answers count again" in shown
    assert "Excluded by a lead" not in shown and ">⚑ flagged</text>" in shown


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("annotator_exclude", {"username": WEAK, "reason": ""}, "say why"),
        ("annotator_exclude", {"username": WEAK, "reason": "a\x00b"}, "NUL"),
        ("annotator_exclude", {"username": "nobody", "reason": "Why"}, "no such annotator"),
        ("annotator_exclude", {"reason": "Why"}, "no such annotator"),
        ("annotator_include", {"username": WEAK}, "not excluded"),
    ],
)
def test_bad_forms_are_400_with_the_fields_error(
    client, project, reviewers, carol, path, data, message
):
    queue = seeded_queue(project, reviewers, items=4)
    gate.queue_agreement_recompute(queue=queue)
    client.force_login(carol)
    answer = client.post(reverse(f"review:{path}", args=[queue.pk]), data)
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert not AnnotatorExclusion.objects.filter(revoked_at__isnull=True).exists()


def test_a_username_of_invalid_utf8_is_400(client, project, reviewers, carol):
    queue = seeded_queue(project, reviewers, items=4)
    client.force_login(carol)
    for path in ("annotator_exclude", "annotator_include"):
        answer = client.post(
            reverse(f"review:{path}", args=[queue.pk]),
            b"username=%ED%A0%80&reason=%ED%A0%80",  # a lone surrogate, as UTF-8 would carry it
            content_type="application/x-www-form-urlencoded",
        )
        assert answer.status_code == 400


def test_only_the_projects_leads_may_exclude(client, project, reviewers, alice, owen):
    queue = seeded_queue(project, reviewers, items=4)
    for user in (alice, owen, reviewers[WEAK]):  # an annotator, another project's admin
        client.force_login(user)
        for path in ("annotator_exclude", "annotator_include"):
            answer = client.post(
                reverse(f"review:{path}", args=[queue.pk]), {"username": WEAK, "reason": "x"}
            )
            assert answer.status_code == 404
    assert not AnnotatorExclusion.objects.exists()


def test_the_agreement_page_reads_exclusions_in_one_query(
    client, project, reviewers, carol, django_assert_max_num_queries
):
    queue = seeded_queue(project, reviewers)
    annotator_exclude(queue=queue, username=WEAK, lead=carol, reason="Careless.")
    annotator_exclusion_revoke(queue=queue, username=WEAK, lead=carol)
    annotator_exclude(queue=queue, username="ann", lead=carol, reason="Test.")
    gate.queue_agreement_recompute(queue=queue)
    client.force_login(carol)
    page = reverse("review:agreement", args=[queue.pk])
    client.get(page)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(page)
    annotator_exclude(queue=queue, username="ben", lead=carol, reason="Test.")
    annotator_exclude(queue=queue, username=WEAK, lead=carol, reason="Again.")
    with django_assert_max_num_queries(len(few)):
        shown = client.get(page).content.decode()
    assert shown.count("Count again") == 3
