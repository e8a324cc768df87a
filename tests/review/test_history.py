"""An annotator's history: changing answers (and when not), a lead's reopening, undoing a
skip, flags and skip reasons; the pages, their authorisation and their bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from review import gate
from review.claims import ReviewConflict, annotation_submit, item_claim_next, item_skip
from review.history import (
    FINAL,
    annotation_change,
    answers_changeable,
    item_flag,
    reopen_item,
    skip_undo,
    verdict_is_final,
)
from review.models import Annotation, Assignment, Item, ItemFlag
from review.services import item_adjudicate
from tests.conftest import token_client
from tests.review.conftest import make_items
from tests.review.test_views import GOOD_FORM, htmx, logged_in, skip_url, work_url

pytestmark = pytest.mark.django_db

HUGE_ID = 2**70


def answers_url(queue, item) -> str:
    return f"/review/q/{queue.pk}/items/{getattr(item, 'pk', item)}/answers"


def history_url(queue) -> str:
    return f"/review/q/{queue.pk}/history"


def unskip_url(queue, item) -> str:
    return f"/review/q/{queue.pk}/items/{getattr(item, 'pk', item)}/unskip"


def flag_url(queue, item) -> str:
    return f"/review/q/{queue.pk}/items/{getattr(item, 'pk', item)}/flag"


def disputed_item(queue, alice, bob) -> Item:
    """One item alice and bob answered differently (2 answers per item): disputed, no
    decision, after a recomputation."""
    (item,) = make_items(queue, 1)
    annotation_submit(item=item, user=alice, answers={"better": "tie", "quality": 2})
    annotation_submit(item=item, user=bob, answers={"better": "both bad", "quality": 2})
    gate.queue_agreement_recompute(queue=queue)
    item.refresh_from_db()
    assert (item.agreement_state, item.decision) == ("disputed", "")
    return item


def decided_item(queue, alice, bob) -> Item:
    """A disputed item a lead adjudicated: its verdict is final."""
    item = disputed_item(queue, alice, bob)
    item_adjudicate(item=item, lead=bob, decision="rejected")
    gate.queue_agreement_recompute(queue=queue)
    item.refresh_from_db()
    assert item.decision == "rejected"
    return item


# The rule -----------------------------------------------------------------------------------


def test_pending_and_disputed_verdicts_are_not_final_decided_ones_are():
    now = timezone.now()
    assert not verdict_is_final(Item(status="open"), adjudicated_at=None)
    assert not verdict_is_final(
        Item(status="complete", agreement_state="disputed"), adjudicated_at=None
    )
    assert verdict_is_final(
        Item(status="complete", agreement_state="agreed", decision="accepted"),
        adjudicated_at=None,
    )
    # Excluded because the queue's alpha is too low is a verdict too: it is on the label.
    assert verdict_is_final(
        Item(status="complete", agreement_state="agreed", decision="excluded"),
        adjudicated_at=None,
    )
    assert verdict_is_final(Item(status="complete"), adjudicated_at=now)
    assert verdict_is_final(Item(status="discarded"), adjudicated_at=None)


def test_a_reopening_allows_each_annotator_one_change_after_it():
    answered = timezone.now() - timedelta(hours=2)
    adjudicated = answered + timedelta(hours=1)
    item = Item(status="complete", decision="rejected")
    annotation = Annotation(created_at=answered)
    assert not answers_changeable(item, annotation, adjudicated_at=adjudicated)
    item.reopened_at = adjudicated - timedelta(minutes=1)  # reopened, then adjudicated
    assert not answers_changeable(item, annotation, adjudicated_at=adjudicated)
    item.reopened_at = adjudicated + timedelta(minutes=1)
    assert answers_changeable(item, annotation, adjudicated_at=adjudicated)
    annotation.updated_at = item.reopened_at + timedelta(seconds=1)  # changed since
    assert not answers_changeable(item, annotation, adjudicated_at=adjudicated)
    discarded = Item(status="discarded", decision="excluded", reopened_at=timezone.now())
    assert not answers_changeable(discarded, Annotation(created_at=answered), adjudicated_at=None)


# Changing an answer -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # commits, as served: the recomputation runs
def test_changing_an_answer_updates_it_and_reruns_agreement(queue, alice, bob, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the recomputation runs here, after the commit
    item = disputed_item(queue, alice, bob)
    snapshots = queue.snapshots.count()
    changed = annotation_change(
        queue=queue, item_id=item.pk, user=alice, answers={"better": "both bad", "quality": 2}
    )
    assert queue.snapshots.count() == snapshots + 1
    stored = Annotation.objects.get(pk=changed.pk)
    assert stored.answers == stored.values == {"better": "both bad", "quality": 2}
    assert stored.updated_at is not None and stored.updated_at > stored.created_at
    item.refresh_from_db()
    assert item.agreement_state == "agreed" and item.agreement == 1.0


def test_a_change_maps_left_and_right_through_what_the_annotator_saw(queue, alice):
    (item,) = make_items(queue, 1)
    Assignment.objects.create(
        item=item,
        queue=queue,
        user=alice,
        expires_at=timezone.now() + timedelta(minutes=5),
        presentation={"order": [1, 0]},
    )
    annotation_submit(item=item, user=alice, answers={"better": "left", "quality": 3})
    changed = annotation_change(
        queue=queue, item_id=item.pk, user=alice, answers={"better": "right", "quality": 3}
    )
    assert changed.answers["better"] == "right"
    assert changed.values["better"] == "response_1"  # right showed the first response


def test_a_final_verdict_refuses_a_change_until_a_lead_reopens_the_item(queue, alice, bob, carol):
    item = decided_item(queue, alice, bob)
    new = {"better": "both bad", "quality": 2}
    with pytest.raises(ReviewConflict, match="final"):
        annotation_change(queue=queue, item_id=item.pk, user=alice, answers=new)
    assert Annotation.objects.get(item=item, user=alice).answers["better"] == "tie"

    reopen_item(item=item, by=carol)
    item.refresh_from_db()
    assert item.reopened_by == carol and item.reopened_at is not None
    annotation_change(queue=queue, item_id=item.pk, user=alice, answers=new)
    assert Annotation.objects.get(item=item, user=alice).answers["better"] == "both bad"
    # One change per reopening: the next waits for the lead again.
    with pytest.raises(ReviewConflict):
        annotation_change(queue=queue, item_id=item.pk, user=alice, answers=new)
    # Bob has his own change left.
    annotation_change(
        queue=queue, item_id=item.pk, user=bob, answers={"better": "tie", "quality": 1}
    )


def test_reopening_refuses_an_item_without_a_final_verdict_or_discarded(queue, alice, bob, carol):
    item = disputed_item(queue, alice, bob)
    with pytest.raises(ReviewConflict, match="no final verdict"):
        reopen_item(item=item, by=carol)
    item_adjudicate(item=item, lead=carol, decision="discarded")
    with pytest.raises(ReviewConflict, match="discarded"):
        reopen_item(item=item, by=carol)
    assert Item.objects.get(pk=item.pk).reopened_at is None


def test_no_answer_of_mine_cannot_be_changed(queue, alice, bob):
    (item,) = make_items(queue, 1)
    annotation_submit(item=item, user=bob, answers={"better": "tie", "quality": 2})
    with pytest.raises(Annotation.DoesNotExist):
        annotation_change(
            queue=queue, item_id=item.pk, user=alice, answers={"better": "tie", "quality": 1}
        )
    with pytest.raises(Annotation.DoesNotExist):
        annotation_change(
            queue=queue, item_id=HUGE_ID, user=alice, answers={"better": "tie", "quality": 1}
        )


# Undoing a skip -----------------------------------------------------------------------------


def test_undoing_a_skip_claims_the_item_when_a_slot_is_free(queue, alice):
    first, second = make_items(queue, 2)
    item_claim_next(queue=queue, user=alice)
    item_skip(item=first, user=alice, reason="Not my language")
    assert Assignment.objects.get(item=first, user=alice).skip_reason == "Not my language"
    assert item_claim_next(queue=queue, user=alice).item_id == second.pk
    claimed = skip_undo(queue=queue, item_id=first.pk, user=alice)
    assert claimed is not None and claimed.item_id == first.pk
    # The claim on the second item went back to the queue: one claim at a time.
    mine = Assignment.objects.filter(user=alice, queue=queue)
    assert {(a.item_id, a.status) for a in mine} == {(first.pk, "claimed")}
    assert item_claim_next(queue=queue, user=alice).item_id == first.pk


def test_undoing_a_skip_of_a_full_item_forgets_the_skip(queue, alice, bob, carol):
    (item,) = make_items(queue, 1)
    item_skip(item=item, user=alice)
    queue.members.add(carol)
    annotation_submit(item=item, user=bob, answers={"better": "tie", "quality": 2})
    annotation_submit(item=item, user=carol, answers={"better": "tie", "quality": 2})
    assert skip_undo(queue=queue, item_id=item.pk, user=alice) is None
    assert not Assignment.objects.filter(item=item, user=alice).exists()


def test_only_my_own_skip_can_be_undone(queue, alice, bob):
    (item,) = make_items(queue, 1)
    item_skip(item=item, user=bob)
    with pytest.raises(Assignment.DoesNotExist):
        skip_undo(queue=queue, item_id=item.pk, user=alice)
    assert Assignment.objects.get(item=item, user=bob).status == "skipped"


# Flags --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", "reason: say"),
        ("  ", "reason: say"),
        ("x" * 2001, "at most 2000"),
        ("a\ud800", "surrogates"),
    ],
)
def test_a_flag_needs_a_reason_it_can_store(queue, alice, reason, message):
    (item,) = make_items(queue, 1)
    with pytest.raises(ValueError, match=message):
        item_flag(item=item, user=alice, reason=reason)
    assert not ItemFlag.objects.exists()


# The pages ----------------------------------------------------------------------------------


def test_history_lists_my_answers_as_shown_and_my_skips_only(queue, alice, bob):
    answered, skipped, others = make_items(queue, 3)
    Assignment.objects.create(
        item=answered,
        queue=queue,
        user=alice,
        expires_at=timezone.now() + timedelta(minutes=5),
        presentation={"order": [1, 0]},
    )
    annotation_submit(
        item=answered, user=alice, answers={"better": "left", "quality": 3, "note": "<b>x</b>"}
    )
    item_skip(item=skipped, user=alice, reason="<i>Unsure</i>")
    annotation_submit(item=others, user=bob, answers={"better": "right", "quality": 1})
    item_skip(item=answered, user=bob, reason="bob's reason")
    html = logged_in(alice).get(history_url(queue)).content.decode()
    assert f'id="answer-{answered.pk}"' in html
    assert "<dt>Which answer is better?</dt><dd>Left</dd>" in html  # as alice saw it
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert f'id="skip-{skipped.pk}"' in html and "&lt;i&gt;Unsure&lt;/i&gt;" in html
    assert f'id="answer-{others.pk}"' not in html and "bob&#x27;s reason" not in html


def test_history_costs_the_same_queries_for_3_or_30_answers(queue, alice):
    items = make_items(queue, 30)
    for item in items[:3]:
        annotation_submit(item=item, user=alice, answers={"better": "tie", "quality": 2})
    client = logged_in(alice)
    with CaptureQueriesContext(connection) as few:
        assert client.get(history_url(queue)).status_code == 200
    for item in items[3:]:
        annotation_submit(item=item, user=alice, answers={"better": "tie", "quality": 2})
    with CaptureQueriesContext(connection) as many:
        assert client.get(history_url(queue)).status_code == 200
    # Session, user, the queue (with its questions on PostgreSQL), answers, skips.
    assert len(few) == len(many) <= 7


def test_reopen_shows_my_answers_and_saving_changes_them(queue, alice, bob):
    item = disputed_item(queue, alice, bob)
    client = logged_in(alice)
    html = client.get(answers_url(queue, item)).content.decode()
    assert f"Item {item.pk}</h2>" in html
    assert 'value="tie" checked' in html and "Save changes" in html
    response = client.post(
        answers_url(queue, item), {**GOOD_FORM, "answer-better": "both bad", "answer-quality": "5"}
    )
    assert response.status_code == 302 and response["Location"] == work_url(queue)
    assert Annotation.objects.get(item=item, user=alice).answers == {
        "better": "both bad",
        "quality": 5,
    }
    follow = client.get(work_url(queue)).content.decode()
    assert f"Changed your answers to item {item.pk}." in follow


def test_a_final_item_is_shown_without_a_save_and_a_post_changes_nothing(queue, alice, bob):
    item = decided_item(queue, alice, bob)
    client = logged_in(alice)
    html = client.get(answers_url(queue, item)).content.decode()
    assert "Save changes" not in html and "disabled" in html
    assert "verdict is final" in html
    response = client.post(answers_url(queue, item), {**GOOD_FORM, "answer-better": "both bad"})
    assert response.status_code == 302
    assert Annotation.objects.get(item=item, user=alice).answers["better"] == "tie"
    follow = client.get(response["Location"]).content.decode()
    assert f'<li class="message warning">{escape(FINAL)}</li>' in follow


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"answer-better": "nonsense", "answer-quality": "3"}, "better"),
        ({"answer-better": "tie", "answer-quality": "99999999999999999999"}, "quality"),
        ({"answer-better": "tie", "answer-quality": "3", "answer-note": "a\x00b"}, "note"),
    ],
)
def test_a_bad_change_is_400_naming_the_question_and_stores_nothing(queue, alice, bob, form, field):
    item = disputed_item(queue, alice, bob)
    response = logged_in(alice).post(answers_url(queue, item), form)
    assert response.status_code == 400
    assert f'id="q-{field}-error"' in response.content.decode()
    assert Annotation.objects.get(item=item, user=alice).updated_at is None


def test_previous_goes_to_my_last_answer_then_the_one_before(queue, alice, bob):
    first, second = make_items(queue, 2)
    client = logged_in(alice)
    assert client.get(f"/review/q/{queue.pk}/previous")["Location"] == work_url(queue)
    annotation_submit(item=first, user=alice, answers={"better": "tie", "quality": 2})
    annotation_submit(item=second, user=bob, answers={"better": "tie", "quality": 2})
    annotation_submit(item=second, user=alice, answers={"better": "tie", "quality": 2})
    previous = client.get(f"/review/q/{queue.pk}/previous")
    assert previous["Location"] == answers_url(queue, second)
    before = client.get(f"/review/q/{queue.pk}/previous?before={second.pk}")
    assert before["Location"] == answers_url(queue, first)
    for bad in ("abc", str(HUGE_ID), "-1", "١"):
        assert client.get(f"/review/q/{queue.pk}/previous?before={bad}").status_code == 404
    work = client.get(work_url(queue)).content.decode()
    assert f'href="/review/q/{queue.pk}/previous"' in work and "data-previous" in work


def test_undo_skip_page_claims_the_item_back(queue, alice):
    first, _ = make_items(queue, 2)
    client = logged_in(alice)
    client.get(work_url(queue))
    htmx(client, skip_url(queue, first), {"skip_reason": "Later"})
    assert "Later" in client.get(history_url(queue)).content.decode()
    response = client.post(unskip_url(queue, first))
    assert response.status_code == 302
    html = client.get(work_url(queue)).content.decode()
    assert f"Undid your skip: item {first.pk} is yours to answer." in html
    assert f"Item {first.pk}</h2>" in html


def test_skip_reason_beyond_500_characters_is_a_form_error(queue, alice):
    (item,) = make_items(queue, 1)
    client = logged_in(alice)
    client.get(work_url(queue))
    for bad in ("x" * 501, "a\x00b"):
        response = htmx(client, skip_url(queue, item), {"skip_reason": bad})
        assert response.status_code == 400
        html = response.content.decode()
        assert 'id="skip-reason-error"' in html and "skip_reason:" in html
        assert Assignment.objects.get(item=item, user=alice).status == "claimed"


def test_flag_from_the_work_page_and_its_bad_input(queue, alice):
    (item,) = make_items(queue, 1)
    client = logged_in(alice)
    client.get(work_url(queue))
    for bad in ("", "x" * 2001, "a\x00b"):
        response = htmx(client, flag_url(queue, item), {"reason": bad})
        assert response.status_code == 400
        assert 'id="flag-reason-error"' in response.content.decode()
    assert not ItemFlag.objects.exists()
    response = htmx(client, flag_url(queue, item), {"reason": "The prompt is cut off."})
    assert response.status_code == 200
    assert f"Flagged item {item.pk} for the queue&#x27;s leads." in response.content.decode()
    flag = ItemFlag.objects.get()
    assert (flag.item, flag.queue, flag.user, flag.reason) == (
        item,
        queue,
        alice,
        "The prompt is cut off.",
    )


def test_others_answers_and_queues_are_404(queue, alice, bob, owen, project):
    item = disputed_item(queue, alice, bob)
    (fresh,) = make_items(queue, 1)
    item_skip(item=fresh, user=bob)
    client = logged_in(alice)
    # Not my answer, not my skip: 404, nothing changes.
    assert client.get(answers_url(queue, fresh)).status_code == 404
    assert client.post(unskip_url(queue, fresh)).status_code == 404
    assert client.get(answers_url(queue, HUGE_ID)).status_code == 404
    assert client.post(unskip_url(queue, HUGE_ID)).status_code == 404
    assert Assignment.objects.get(item=fresh, user=bob).status == "skipped"
    # Not a member of the queue: 404 for every page and action.
    stranger = logged_in(owen)
    for method, url in [
        ("get", history_url(queue)),
        ("get", answers_url(queue, item)),
        ("post", answers_url(queue, item)),
        ("get", f"/review/q/{queue.pk}/previous"),
        ("post", unskip_url(queue, fresh)),
        ("post", flag_url(queue, item)),
    ]:
        assert getattr(stranger, method)(url).status_code == 404, url
    assert not ItemFlag.objects.exists()
    # Removed from the queue's members: bob's own answer is out of reach too.
    queue.members.remove(bob)
    assert logged_in(bob).get(answers_url(queue, item)).status_code == 404


# The API --------------------------------------------------------------------------------------


def api_url(queue, item, what: str) -> str:
    return f"/api/v1/queues/{queue.pk}/items/{getattr(item, 'pk', item)}/{what}"


def test_api_changes_my_answer_until_the_verdict_is_final(queue, alice, bob, carol):
    item = disputed_item(queue, alice, bob)
    api = token_client(alice)
    url = api_url(queue, item, "annotations")
    changed = api.put(url, {"answers": {"better": "both bad", "quality": 2}}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["answers"] == {"better": "both bad", "quality": 2}
    bad = api.put(url, {"answers": {"better": "nope", "quality": 2}}, format="json")
    assert bad.status_code == 400 and "better" in bad.json()["errors"]
    assert api.put(url, {"answers": "x"}, format="json").status_code == 400
    item_adjudicate(item=item, lead=carol, decision="accepted")
    final = api.put(url, {"answers": {"better": "tie", "quality": 2}}, format="json")
    assert final.status_code == 409 and "final" in final.json()["detail"]
    (fresh,) = make_items(queue, 1)
    not_mine = api.put(
        api_url(queue, fresh, "annotations"),
        {"answers": {"better": "tie", "quality": 2}},
        format="json",
    )
    assert not_mine.status_code == 404
    assert Annotation.objects.get(item=item, user=alice).answers["better"] == "both bad"


def test_api_skips_with_a_reason_undoes_the_skip_and_flags(queue, alice, owen):
    first, _ = make_items(queue, 2)
    api = token_client(alice)
    url = api_url(queue, first, "skip")
    # Raw JSON bodies: a lone surrogate cannot be encoded by the test client otherwise.
    for bad in (
        f'{{"reason": "{"x" * 501}"}}',
        r'{"reason": "a\u0000b"}',
        r'{"reason": "a\ud800"}',
        '["x"]',
    ):
        response = api.post(url, bad, content_type="application/json")
        assert response.status_code == 400, bad
    assert not Assignment.objects.filter(item=first).exists()
    assert api.post(url, {"reason": "Later"}, format="json").json() == {"skipped": first.pk}
    assert Assignment.objects.get(item=first, user=alice).skip_reason == "Later"
    assert api.delete(url).json() == {"unskipped": first.pk, "claimed": True}
    assert api.delete(url).status_code == 404  # nothing skipped any more
    assert Assignment.objects.get(item=first, user=alice).status == "claimed"

    flags = api_url(queue, first, "flags")
    for bad in ("{}", '{"reason": ""}', f'{{"reason": "{"x" * 2001}"}}', r'{"reason": "a\ud800"}'):
        assert api.post(flags, bad, content_type="application/json").status_code == 400, bad
    created = api.post(flags, {"reason": "Cut off"}, format="json")
    assert created.status_code == 201 and created.json()["reason"] == "Cut off"
    assert token_client(owen).post(flags, {"reason": "x"}, format="json").status_code == 404
    assert ItemFlag.objects.count() == 1
