"""The lead's pages: agreement (with its charts), disputed items, gold and held-out items."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from review import gate
from review.agreement import NO_PAIRS
from review.claims import annotation_submit
from review.models import Adjudication, AgreementSnapshot, Item, Queue
from review.services import item_set_gold, items_add
from tests.review.conftest import make_items
from tests.review.test_views import Tags, logged_in, queue_like

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
MINUTE = timedelta(minutes=1)


def url(queue: Queue, page: str) -> str:
    return f"/review/q/{queue.pk}/{page}"


def item_url(queue: Queue, item: Item, action: str) -> str:
    return f"/review/q/{queue.pk}/items/{item.pk}/{action}"


def answer_all(items, answers_by_user, *, start: datetime | None = None):
    """Each user answers every item (claiming and answering at once); from `start`, one
    answer a minute, so charts over time do not depend on how fast the test runs."""
    for n, (item, (user, answers)) in enumerate(
        (item, pair) for item in items for pair in answers_by_user.items()
    ):
        now = start + timedelta(minutes=n) if start is not None else None
        annotation_submit(item=item, user=user, answers=answers, now=now)


def disputed(queue: Queue, alice, bob, n: int) -> list[Item]:
    """`n` items that alice and bob answered differently, made disputed by the gate."""
    items = make_items(queue, n)
    answer_all(
        items,
        {
            alice: {"better": "left", "quality": 4, "note": "Left reads better."},
            bob: {"better": "right", "quality": 2},
        },
    )
    gate.queue_agreement_recompute(queue=queue)
    return items


def lead_requests(queue: Queue, item: Item) -> list[tuple[str, str, dict]]:
    return [
        ("get", url(queue, "agreement"), {}),
        ("post", url(queue, "agreement/recompute"), {}),
        ("get", url(queue, "disputed"), {}),
        ("post", item_url(queue, item, "adjudicate"), {"decision": "accepted"}),
        ("get", url(queue, "items"), {}),
        ("post", item_url(queue, item, "gold"), {"gold-better": "tie"}),
        ("post", url(queue, "held-out"), {"item_ids": [item.pk]}),
        ("post", url(queue, "held-out"), {"share": "1"}),
    ]


# Who may see what -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "owen"])
def test_annotator_and_other_projects_admin_get_404_on_every_lead_page_and_form(
    request, queue, who, monkeypatch
):
    scheduled = []
    monkeypatch.setattr("review.claims.agreement_schedule", scheduled.append)
    (item,) = make_items(queue, 1)
    client = logged_in(request.getfixturevalue(who))
    for method, path, data in lead_requests(queue, item):
        assert getattr(client, method)(path, data).status_code == 404, path
    item.refresh_from_db()
    assert not Adjudication.objects.exists()
    assert item.gold_answers is None and not item.held_out
    assert scheduled == []


def test_anonymous_visitor_is_sent_to_login_from_lead_pages(client, queue):
    (item,) = make_items(queue, 1)
    for method, path, data in lead_requests(queue, item):
        response = getattr(client, method)(path, data)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_my_queues_and_the_overview_link_the_lead_pages_for_leads_only(queue, alice, carol):
    pages = [url(queue, "agreement"), url(queue, "disputed"), url(queue, "items")]
    mine = logged_in(carol).get("/review/").content.decode()
    overview = logged_in(carol).get(url(queue, "overview")).content.decode()
    for page in pages:
        assert f'href="{page}"' in mine
        assert f'href="{page}"' in overview
    annotator = logged_in(alice).get("/review/").content.decode()
    assert not any(page in annotator for page in pages)


def test_every_form_on_the_lead_pages_carries_a_csrf_token(queue, alice, bob, carol):
    disputed(queue, alice, bob, 2)
    client = logged_in(carol)
    for page in ("agreement", "disputed", "items"):
        tags = Tags(client.get(url(queue, page)).content.decode()).tags
        names = []
        for tag, attrs in tags:
            if tag == "form":
                names.append([attrs.get("method", "get")])
            elif tag == "input" and names:
                names[-1].append(attrs.get("name"))
        posts = [form for form in names if form[0] == "post"]
        assert posts, page
        assert all("csrfmiddlewaretoken" in form for form in posts), page


def test_lead_forms_refuse_posts_without_the_csrf_token(queue, carol):
    (item,) = make_items(queue, 1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(carol)
    for method, path, data in lead_requests(queue, item):
        if method == "post":
            assert client.post(path, data).status_code == 403, path
    assert not Adjudication.objects.exists()


# Agreement --------------------------------------------------------------------------------


def test_agreement_page_without_a_snapshot_says_so_and_offers_a_recompute(
    queue, carol, monkeypatch
):
    scheduled = []
    monkeypatch.setattr("review.claims.agreement_schedule", scheduled.append)
    client = logged_in(carol)
    html = client.get(url(queue, "agreement")).content.decode()
    assert "No agreement has been computed for this queue yet" in html
    assert f'action="{url(queue, "agreement/recompute")}"' in html
    assert "Recompute now" in html
    assert not AgreementSnapshot.objects.exists()  # a page view never computes

    response = client.post(url(queue, "agreement/recompute"))
    assert response.status_code == 302 and response["Location"] == url(queue, "agreement")
    assert scheduled == [queue.pk]


def test_recompute_now_creates_a_snapshot_in_process_mode(queue, alice, bob, carol, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    answer_all(make_items(queue, 3), {alice: {"better": "tie", "quality": 3}})
    response = logged_in(carol).post(url(queue, "agreement/recompute"), follow=True)
    assert AgreementSnapshot.objects.filter(queue=queue).count() == 1
    assert "Alpha per question" in response.content.decode()


def test_lead_sees_alpha_per_question_gate_tallies_and_svg_charts(queue, alice, bob, carol):
    items = make_items(queue, 6)
    # Timed, not as fast as the test runs: the series cuts the time from the first answer
    # to the last into 8 steps, and alpha is defined only once bob's 4th answer is in.
    # Untimed, a slow start (alice's answers) pushed bob's into the last step, and the
    # chart had one point per question and no line.
    start = timezone.now() - timedelta(hours=1)
    answer_all(items[:4], {alice: {"better": "left", "quality": 4}}, start=start)
    answer_all(items[4:], {alice: {"better": "right", "quality": 2}}, start=start + MINUTE * 4)
    answer_all(items[:3], {bob: {"better": "left", "quality": 4}}, start=start + MINUTE * 6)
    answer_all(items[3:], {bob: {"better": "right", "quality": 2}}, start=start + MINUTE * 9)
    snapshot = gate.queue_agreement_recompute(queue=queue)
    alpha = snapshot.results["questions"]["better"]["alpha"]

    response = logged_in(carol).get(url(queue, "agreement"))
    html = response.content.decode()
    assert response.status_code == 200
    assert f"{alpha:.3f}" in html
    assert "Which answer is better?" in html and "Items by agreement" in html
    tags = Tags(html).tags
    charts = [attrs for tag, attrs in tags if tag == "svg" and attrs.get("role") == "img"]
    assert len(charts) == 2
    assert "alpha per question over time" in charts[0]["aria-label"]
    assert "minimum alpha, 0.667" in charts[0]["aria-label"]
    assert "2 annotators" in charts[1]["aria-label"]
    polylines = [tag for tag, _ in tags if tag == "polyline"]
    assert len(polylines) == 2  # one line per gated question
    series = snapshot.results["series"].values()
    points = sum(1 for points in series for p in points if p["alpha"] is not None)
    assert html.count("<title>better: alpha") + html.count("<title>quality: alpha") == points
    assert 'class="minimum"' in html and ">0.667</tspan>" in html
    assert "Alpha without" in html and '<th scope="row">alice</th>' in html


def test_undefined_alpha_is_explained_in_words(queue, alice, carol):
    answer_all(make_items(queue, 3), {alice: {"better": "tie", "quality": 3}})
    gate.queue_agreement_recompute(queue=queue)
    html = logged_in(carol).get(url(queue, "agreement")).content.decode()
    assert f"Undefined:</span> {NO_PAIRS}" in html


def test_flagged_annotator_is_marked_in_words_in_chart_and_table(
    queue, alice, bob, carol, django_user_model
):
    dave = django_user_model.objects.create_user(username="dave")
    queue.annotations_per_item = 3
    queue.save()
    queue.members.add(dave)
    items = make_items(queue, 6)
    for item in items:
        item_set_gold(item=item, answers={"better": "tie"})
    answer_all(
        items,
        {
            alice: {"better": "tie", "quality": 3},
            bob: {"better": "tie", "quality": 3},
            dave: {"better": "both bad", "quality": 1},
        },
    )
    gate.queue_agreement_recompute(queue=queue)
    html = logged_in(carol).get(url(queue, "agreement")).content.decode()
    charts = [a for t, a in Tags(html).tags if t == "svg" and a.get("role") == "img"]
    assert "flagged: dave." in charts[1]["aria-label"]
    assert "⚑ flagged</text>" in html
    dave_row = html[html.index('<th scope="row">dave</th>') :].split("</tr>")[0]
    assert "Flagged" in dave_row
    alice_row = html[html.index('<th scope="row">alice</th>') :].split("</tr>")[0]
    assert "Flagged" not in alice_row and "1.00" in alice_row  # gold accuracy


def test_agreement_page_lists_the_latest_snapshots(queue, alice, carol):
    answer_all(make_items(queue, 2), {alice: {"better": "tie", "quality": 3}})
    for _ in range(7):
        gate.queue_agreement_recompute(queue=queue)
    html = logged_in(carol).get(url(queue, "agreement")).content.decode()
    section = html[html.index("Latest recomputations") :]
    assert section.split("</tbody>")[0].count('<th scope="row">') == 5


def test_agreement_page_costs_the_same_queries_for_5_or_50_items(queue, alice, bob, carol):
    small, big = queue, queue_like(queue, "Big", [alice, bob])
    for target, n in ((small, 5), (big, 50)):
        items = make_items(target, n)
        answer_all(items, {alice: {"better": "left", "quality": 4}})
        answer_all(items[: n // 2], {bob: {"better": "left", "quality": 3}})
        answer_all(items[n // 2 :], {bob: {"better": "right", "quality": 4}})
        gate.queue_agreement_recompute(queue=target)
    client = logged_in(carol)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url(small, "agreement")).status_code == 200
    with CaptureQueriesContext(connection) as many:
        assert client.get(url(big, "agreement")).status_code == 200
    assert len(few) == len(many)


# Disputed items ---------------------------------------------------------------------------


def test_disputed_page_shows_each_item_with_every_annotators_answers(queue, alice, bob, carol):
    items = disputed(queue, alice, bob, 2)
    html = logged_in(carol).get(url(queue, "disputed")).content.decode()
    for item in items:
        assert f"Item {item.pk}</h2>" in html
        assert f'action="{item_url(queue, item, "adjudicate")}"' in html
    assert html.count('<th scope="row">alice</th>') == 2
    assert html.count('<th scope="row">bob</th>') == 2
    assert "Left reads better." in html  # alice's note, shown to the lead
    assert "Question 0?" in html and "A0" in html and "B0" in html
    for value, label in Adjudication.Decision.choices:
        assert f'value="{value}"' in html and label in html


def test_adjudication_stores_the_decision_and_the_item_leaves_the_disputed_list(
    queue, alice, bob, carol
):
    first, second = disputed(queue, alice, bob, 2)
    client = logged_in(carol)
    response = client.post(
        item_url(queue, first, "adjudicate"), {"decision": "rejected", "note": "Both wrong."}
    )
    assert response.status_code == 302 and response["Location"] == url(queue, "disputed")
    adjudication = Adjudication.objects.get()
    assert (adjudication.item, adjudication.decided_by) == (first, carol)
    assert (adjudication.decision, adjudication.note) == ("rejected", "Both wrong.")
    html = client.get(url(queue, "disputed")).content.decode()
    assert f"Item {first.pk}</h2>" not in html
    assert f"Item {second.pk}</h2>" in html
    assert f"Item {first.pk}: reject the label." in html  # the message


def test_discarding_a_disputed_item_discards_it(queue, alice, bob, carol):
    (item,) = disputed(queue, alice, bob, 1)
    logged_in(carol).post(item_url(queue, item, "adjudicate"), {"decision": "discarded"})
    item.refresh_from_db()
    assert item.status == Item.Status.DISCARDED


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"decision": "maybe"}, "decision"),
        ({}, "decision"),
        ({"decision": "accepted", "note": "x" * 5001}, "note"),
    ],
)
def test_bad_adjudication_is_400_naming_the_field_and_stores_nothing(
    queue, alice, bob, carol, data, field
):
    (item,) = disputed(queue, alice, bob, 1)
    response = logged_in(carol).post(item_url(queue, item, "adjudicate"), data)
    html = response.content.decode()
    assert response.status_code == 400
    assert f"<code>{field}</code>" in html
    assert f'id="{field}-{item.pk}-error"' in html
    assert not Adjudication.objects.exists()
    assert f"Item {item.pk}</h2>" in html  # still listed, with the form to try again


def test_adjudicating_an_item_of_another_queue_is_404(queue, alice, bob, carol):
    other = queue_like(queue, "Other", [alice, bob])
    (foreign,) = disputed(other, alice, bob, 1)
    response = logged_in(carol).post(
        item_url(queue, foreign, "adjudicate"), {"decision": "accepted"}
    )
    assert response.status_code == 404
    assert not Adjudication.objects.exists()


def test_disputed_page_costs_the_same_queries_for_5_or_50_items(queue, alice, bob, carol):
    small, big = queue, queue_like(queue, "Big", [alice, bob])
    disputed(small, alice, bob, 5)
    disputed(big, alice, bob, 50)
    client = logged_in(carol)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url(small, "disputed")).content.decode().count("Save decision") == 5
    with CaptureQueriesContext(connection) as many:
        assert client.get(url(big, "disputed")).content.decode().count("Save decision") == 50
    assert len(few) == len(many)


def test_user_and_model_text_is_escaped_on_the_lead_pages(
    queue, alice, bob, carol, django_user_model
):
    eve = django_user_model.objects.create_user(username="<b>eve</b>")
    queue.members.add(eve)
    (item_id,) = items_add(
        queue=queue, items=[{"content": {"prompt": SCRIPT, "responses": [SCRIPT, "B"]}}]
    )
    item = Item.objects.get(pk=item_id)
    make_items(queue, 1)
    annotation_submit(
        item=item, user=alice, answers={"better": "left", "quality": 4, "note": SCRIPT}
    )
    annotation_submit(item=item, user=eve, answers={"better": "right", "quality": 1})
    gate.queue_agreement_recompute(queue=queue)
    client = logged_in(carol)
    for page in ("disputed", "items", "agreement"):
        html = client.get(url(queue, page)).content.decode()
        assert "<script>alert" not in html, page
        assert "<b>eve</b>" not in html, page
    disputed_html = client.get(url(queue, "disputed")).content.decode()
    assert (
        disputed_html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    )  # prompt, response, note
    assert "&lt;b&gt;eve&lt;/b&gt;" in client.get(url(queue, "agreement")).content.decode()


# Gold and held out ------------------------------------------------------------------------


def test_items_page_shows_gold_and_held_out_counts(queue, carol):
    items = make_items(queue, 4)
    item_set_gold(item=items[0], answers={"better": "tie"})
    Item.objects.filter(pk__in=[items[1].pk, items[2].pk]).update(held_out=True)
    html = logged_in(carol).get(url(queue, "items")).content.decode()
    assert '<th scope="row">Gold</th><td class="num">1</td>' in html
    assert '<th scope="row">Held out</th><td class="num">2</td>' in html
    assert '<th scope="row">All items</th><td class="num">4</td>' in html


def test_gold_form_stores_the_known_answers_in_their_stored_form(queue, carol):
    (item,) = make_items(queue, 1)
    client = logged_in(carol)
    html = client.get(url(queue, "items")).content.decode()
    assert 'name="gold-better"' in html and 'value="response_1"' in html
    assert 'value="left"' not in html  # pairs are stored as the response picked, not a side
    response = client.post(
        item_url(queue, item, "gold"), {"gold-better": "response_1", "gold-quality": "4"}
    )
    assert response.status_code == 302 and response["Location"] == url(queue, "items")
    item.refresh_from_db()
    assert item.gold_answers == {"better": "response_1", "quality": 4}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"gold-better": "sideways"}, "better"),
        ({"gold-quality": "9"}, "quality"),
        ({"gold-note": "free text"}, "note"),
        ({"gold-better": ""}, "answers"),
    ],
)
def test_bad_gold_answers_are_400_naming_the_field(queue, carol, data, field):
    (item,) = make_items(queue, 1)
    response = logged_in(carol).post(item_url(queue, item, "gold"), data)
    assert response.status_code == 400
    assert f"<code>{field}</code>" in response.content.decode()
    item.refresh_from_db()
    assert item.gold_answers is None


def test_checked_items_are_held_out(queue, carol):
    items = make_items(queue, 4)
    response = logged_in(carol).post(
        url(queue, "held-out") + "?show=not_held_out", {"item_ids": [items[0].pk, items[2].pk]}
    )
    assert response.status_code == 302
    assert response["Location"] == url(queue, "items") + "?show=not_held_out"
    held = set(Item.objects.filter(held_out=True).values_list("pk", flat=True))
    assert held == {items[0].pk, items[2].pk}


def test_a_share_of_items_is_held_out(queue, carol):
    make_items(queue, 10)
    client = logged_in(carol)
    response = client.post(url(queue, "held-out"), {"share": "0.3"}, follow=True)
    assert Item.objects.filter(held_out=True).count() == 3
    assert "Held out 3 items." in response.content.decode()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"share": "0"}, "share"),
        ({"share": "1.5"}, "share"),
        ({"share": "a lot"}, "share"),
        ({"share": ""}, "share"),
        ({}, "item_ids"),
        ({"item_ids": ["x"]}, "item_ids"),
    ],
)
def test_bad_hold_out_input_is_400_naming_the_field(queue, carol, data, field):
    make_items(queue, 3)
    response = logged_in(carol).post(url(queue, "held-out"), data)
    assert response.status_code == 400
    assert f"<code>{field}</code>" in response.content.decode()
    assert not Item.objects.filter(held_out=True).exists()


def test_items_of_another_queue_are_not_held_out(queue, alice, carol):
    other = queue_like(queue, "Other", [alice])
    (foreign,) = make_items(other, 1)
    logged_in(carol).post(url(queue, "held-out"), {"item_ids": [foreign.pk]})
    foreign.refresh_from_db()
    assert not foreign.held_out


def test_items_page_filters_and_pages(queue, carol):
    items = make_items(queue, 60)
    Item.objects.filter(pk=items[59].pk).update(held_out=True)
    client = logged_in(carol)
    first = client.get(url(queue, "items")).content.decode()
    assert "Page 1 of 2" in first and f'<th scope="row">{items[0].pk}</th>' in first
    second = client.get(url(queue, "items") + "?page=2").content.decode()
    assert f'<th scope="row">{items[59].pk}</th>' in second
    held = client.get(url(queue, "items") + "?show=held_out").content.decode()
    assert f'<th scope="row">{items[59].pk}</th>' in held
    assert f'<th scope="row">{items[0].pk}</th>' not in held


def test_items_page_costs_the_same_queries_for_5_or_50_items(queue, alice, bob, carol):
    small, big = queue, queue_like(queue, "Big", [alice, bob])
    disputed(small, alice, bob, 5)
    disputed(big, alice, bob, 50)
    client = logged_in(carol)
    with CaptureQueriesContext(connection) as few:
        client.get(url(small, "items"))
    with CaptureQueriesContext(connection) as many:
        client.get(url(big, "items"))
    assert len(few) == len(many)
