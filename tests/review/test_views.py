from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from feedback import labelling
from feedback import services as feedback_services
from feedback.models import Generation, Label
from review import services
from review.claims import annotation_submit
from review.models import Annotation, Assignment, Item, Question, Queue
from review.services import item_adjudicate
from tenancy.services import membership_set
from tests.factories import edit, generation
from tests.review.conftest import make_items

pytestmark = pytest.mark.django_db

GOOD_FORM = {"answer-better": "left", "answer-quality": "4", "answer-note": ""}


def work_url(queue: Queue) -> str:
    return f"/review/q/{queue.pk}/"


def submit_url(queue: Queue, item: Item | int) -> str:
    return f"/review/q/{queue.pk}/items/{getattr(item, 'pk', item)}/submit"


def skip_url(queue: Queue, item: Item | int) -> str:
    return f"/review/q/{queue.pk}/items/{getattr(item, 'pk', item)}/skip"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def htmx(client: Client, url: str, data: dict | None = None):
    return client.post(url, data or {}, HTTP_HX_REQUEST="true")


def queue_like(queue: Queue, name: str, members) -> Queue:
    """Another queue of the same project with the same questions."""
    other = Queue.objects.create(project=queue.project, name=name, annotations_per_item=2)
    for question in queue.questions.all():
        question.pk, question.queue = None, other
        question.save()
    other.members.add(*members)
    return other


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


# Who may see what -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/review/"),
        ("get", "/review/q/{q}/"),
        ("get", "/review/q/{q}/overview"),
        ("post", "/review/q/{q}/items/{i}/submit"),
        ("post", "/review/q/{q}/items/{i}/skip"),
    ],
)
def test_anonymous_visitor_is_sent_to_login(client, queue, method, path):
    (item,) = make_items(queue, 1)
    url = path.format(q=queue.pk, i=item.pk)
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert not Assignment.objects.exists()


def test_non_member_gets_404_for_every_page_of_the_queue(queue, owen, project, django_user_model):
    (item,) = make_items(queue, 1)
    outsider = django_user_model.objects.create_user("dave", password="pw-dave")
    membership_set(project=project, user=outsider, role="annotator")
    for user in (owen, outsider):
        client = logged_in(user)
        assert client.get(work_url(queue)).status_code == 404
        assert client.get(f"/review/q/{queue.pk}/overview").status_code == 404
        assert client.post(submit_url(queue, item), GOOD_FORM).status_code == 404
        assert client.post(skip_url(queue, item)).status_code == 404
    assert not Assignment.objects.exists()
    assert not Annotation.objects.exists()


def test_item_of_another_queue_is_404(queue, alice):
    other = queue_like(queue, "Other", [alice])
    (foreign,) = make_items(other, 1)
    response = logged_in(alice).post(submit_url(queue, foreign), GOOD_FORM)
    assert response.status_code == 404
    assert not Annotation.objects.exists()


def test_overview_is_for_leads_only(queue, alice, carol):
    assert logged_in(alice).get(f"/review/q/{queue.pk}/overview").status_code == 404
    response = logged_in(carol).get(f"/review/q/{queue.pk}/overview")
    assert response.status_code == 200
    assert b"Items by status" in response.content


def test_submit_needs_the_csrf_token(queue, alice):
    (item,) = make_items(queue, 1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(submit_url(queue, item), GOOD_FORM).status_code == 403
    assert not Annotation.objects.exists()


def test_work_page_refuses_get_for_submit(queue, alice):
    (item,) = make_items(queue, 1)
    assert logged_in(alice).get(submit_url(queue, item)).status_code == 405


# My queues --------------------------------------------------------------------------------


def test_my_queues_lists_progress_and_start_links(queue, alice, bob):
    items = make_items(queue, 3)
    bob_client = logged_in(bob)
    bob_client.get(work_url(queue))
    bob_client.post(submit_url(queue, items[0]), GOOD_FORM)
    logged_in(alice).get(work_url(queue))
    logged_in(alice).post(submit_url(queue, items[0]), GOOD_FORM)

    response = logged_in(alice).get("/review/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Edits to check" in html
    assert "1 of 3</strong> items complete · you: 1" in html
    assert f'href="{work_url(queue)}"' in html
    assert "/overview" not in html  # alice does not lead the project


def test_lead_sees_an_overview_link_on_my_queues(queue, carol):
    html = logged_in(carol).get("/review/").content.decode()
    assert f'href="/review/q/{queue.pk}/overview"' in html


def test_my_queues_costs_the_same_queries_for_one_queue_or_many(queue, alice):
    make_items(queue, 2)
    client = logged_in(alice)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/review/").status_code == 200
    for n in range(5):
        make_items(queue_like(queue, f"More {n}", [alice]), 40)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/review/")
    assert response.content.decode().count("Start") >= 6
    assert len(many) == len(few)


# The work page ----------------------------------------------------------------------------


def edit_label_item(queue: Queue, project, priority: int = 5) -> Item:
    feedback_services.events_ingest(
        project=project,
        events=[
            generation(
                "g1",
                input=[
                    {"role": "system", "content": "You summarise reports."},
                    {"role": "user", "content": "Summarise this report."},
                ],
                output="Revenue grew 4% in the quarter, said the report.",
            ),
            edit("g1", "Revenue grew 5% in Q3, said the report.", t=10),
        ],
    )
    labelling.sessions_derive_pending()
    label = Label.objects.get(source="edit")
    (item_id,) = services.items_add(queue=queue, items=[{"label": label, "priority": priority}])
    return Item.objects.get(pk=item_id)


def test_work_page_shows_the_item_its_diff_and_labelled_questions(queue, alice, project):
    item = edit_label_item(queue, project)
    response = logged_in(alice).get(work_url(queue))
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Item {item.pk}" in html
    assert "Summarise this report." in html and ">system<" in html  # the conversation
    assert (
        "Revenue grew <del>4% </del><ins>5% </ins>in <del>the quarter, </del><ins>Q3, </ins>"
        "said the report." in html
    )
    assert "Claim to check:" not in html  # a blind left/right comparison hides it
    assert (
        "<figcaption>Left answer</figcaption>" in html
        and "<figcaption>Right answer</figcaption>" in html
    )
    # Questions: choices and ratings as labelled radio groups, text as a labelled textarea.
    assert "<legend>Which answer is better?" in html
    assert '<label class="option" for="q-better-1"><input type="radio" id="q-better-1"' in html
    assert '<kbd aria-hidden="true">1</kbd><span>left</span>' in html
    assert '<label for="q-note">Why?' in html and '<textarea id="q-note"' in html
    assert 'action="' + submit_url(queue, item) + '"' in html
    assert "Be <em>fair</em>." in html  # guidelines rendered from Markdown
    assert Assignment.objects.get(user=alice).item == item  # claimed


def test_work_page_resumes_the_live_claim(queue, alice):
    make_items(queue, 3)
    client = logged_in(alice)
    first = client.get(work_url(queue)).content.decode()
    again = client.get(work_url(queue)).content.decode()
    claimed = Assignment.objects.get(user=alice)
    assert f"Item {claimed.item_id}<" in first and f"Item {claimed.item_id}<" in again


def test_pair_is_shown_in_the_order_of_the_assignment(queue, alice):
    (item,) = make_items(queue, 1)
    logged_in(alice).get(work_url(queue))
    claim = Assignment.objects.get(user=alice)
    claim.presentation = {"order": [1, 0]}
    claim.save(update_fields=["presentation"])
    html = logged_in(alice).get(work_url(queue)).content.decode()
    left, right = html.index(">B0<"), html.index(">A0<")
    assert left < right


def test_submit_with_htmx_stores_the_annotation_and_returns_the_next_item(queue, alice):
    first, second = make_items(queue, 2)
    client = logged_in(alice)
    client.get(work_url(queue))
    response = htmx(client, submit_url(queue, first), {**GOOD_FORM, "seconds_spent": "12.34"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # the work area only
    annotation = Annotation.objects.get(user=alice)
    assert annotation.item == first
    assert annotation.answers == {"better": "left", "quality": 4}
    assert annotation.seconds_spent == 12.3
    assert f"Item {second.pk}<" in html
    assert f"Saved your answers to item {first.pk}." in html
    assert "0 of 2 complete</strong> · you: 1" in html


def test_submit_without_htmx_redirects_to_the_work_page(queue, alice):
    first, second = make_items(queue, 2)
    client = logged_in(alice)
    client.get(work_url(queue))
    response = client.post(submit_url(queue, first), GOOD_FORM)
    assert response.status_code == 302
    assert response["Location"] == work_url(queue)
    page = client.get(response["Location"]).content.decode()
    assert f"Item {second.pk}<" in page
    assert f"Saved your answers to item {first.pk}." in page
    assert Annotation.objects.filter(user=alice, item=first).exists()


@pytest.mark.parametrize("use_htmx", [True, False])
def test_bad_answer_is_400_naming_the_question_and_keeps_the_input(queue, alice, use_htmx):
    (item,) = make_items(queue, 1)
    client = logged_in(alice)
    client.get(work_url(queue))
    form = {"answer-better": "sideways", "answer-quality": "4", "answer-note": "my <b>note</b>"}
    url = submit_url(queue, item)
    response = htmx(client, url, form) if use_htmx else client.post(url, form)
    html = response.content.decode()
    assert response.status_code == 400
    assert not Annotation.objects.exists()
    assert (
        '<p class="error" id="q-better-error">Must be one of: left, right, tie, both bad.</p>'
        in html
    )
    assert f"Item {item.pk}<" in html
    assert 'value="4" checked' in html  # the rating given is kept
    assert ">my &lt;b&gt;note&lt;/b&gt;</textarea>" in html  # and the note, escaped
    assert ("<html" in html) is not use_htmx


def test_missing_required_answer_is_named(queue, alice):
    (item,) = make_items(queue, 1)
    client = logged_in(alice)
    response = client.post(submit_url(queue, item), {"answer-better": "left"})
    assert response.status_code == 400
    assert '<p class="error" id="q-quality-error">This question needs an answer.</p>' in (
        response.content.decode()
    )
    assert not Annotation.objects.exists()


@pytest.mark.parametrize("use_htmx", [True, False])
def test_skip_moves_on_and_never_offers_the_item_again(queue, alice, use_htmx):
    first, second = make_items(queue, 2)
    client = logged_in(alice)
    client.get(work_url(queue))
    response = (
        htmx(client, skip_url(queue, first)) if use_htmx else client.post(skip_url(queue, first))
    )
    if not use_htmx:
        assert response.status_code == 302
        response = client.get(work_url(queue))
    html = response.content.decode()
    assert f"Skipped item {first.pk}." in html
    assert f"Item {second.pk}<" in html
    assert Assignment.objects.get(user=alice, item=first).status == Assignment.Status.SKIPPED
    htmx(client, skip_url(queue, second))
    assert "Queue done" in client.get(work_url(queue)).content.decode()


def test_answering_twice_shows_a_message_and_moves_on(queue, alice):
    first, second = make_items(queue, 2)
    client = logged_in(alice)
    client.get(work_url(queue))
    htmx(client, submit_url(queue, first), GOOD_FORM)
    response = htmx(client, submit_url(queue, first), GOOD_FORM)
    html = response.content.decode()
    assert response.status_code == 200
    assert "You already answered this item." in html
    assert f"Item {second.pk}<" in html
    assert Annotation.objects.filter(user=alice).count() == 1


def test_empty_queue_shows_queue_done_with_a_way_back(queue, alice):
    html = logged_in(alice).get(work_url(queue)).content.decode()
    assert "Queue done" in html
    assert 'href="/review/"' in html
    assert "answer-form" not in html


def test_other_annotators_answers_are_never_shown(queue, alice, bob):
    (item,) = make_items(queue, 1)
    bob_client = logged_in(bob)
    bob_client.get(work_url(queue))
    bob_client.post(submit_url(queue, item), {**GOOD_FORM, "answer-note": "bob-secret-note"})
    html = logged_in(alice).get(work_url(queue)).content.decode()
    assert f"Item {item.pk}<" in html
    assert "bob-secret-note" not in html
    assert '" checked' not in html


# Escaping ---------------------------------------------------------------------------------

XSS = (
    "<script>alert(1)</script> <img src=x onerror=alert(1)> "
    '[click](javascript:alert(1)) <a href="javascript:alert(1)">link</a>'
)


def assert_nothing_executes(html: str) -> None:
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x onerror=alert(1)>" not in html
    for tag, attrs in Tags(html).tags:
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/"), attrs
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)
            assert not value.strip().lower().startswith("javascript:"), (tag, attrs)


def test_user_and_model_text_and_guidelines_cannot_inject_html(queue, alice, project):
    queue.guidelines = f"# Rules\n\n{XSS}\n\n[ok](https://example.com/guide)"
    queue.save(update_fields=["guidelines"])
    feedback_services.events_ingest(
        project=project,
        events=[
            generation("gx", input=[{"role": "user", "content": XSS}], output=f"Old {XSS}"),
            edit("gx", f"New {XSS} edited", t=10),
        ],
    )
    labelling.sessions_derive_pending()
    gen = Generation.objects.get(external_id="gx")
    label = Label.objects.get(source="edit", generation=gen)
    services.items_add(
        queue=queue,
        items=[
            {"generation": gen, "priority": 3},
            {"label": label, "priority": 2},
            {"content": {"prompt": XSS, "responses": [XSS, f"{XSS}!"]}, "priority": 1},
        ],
    )
    client = logged_in(alice)
    pages = [client.get(work_url(queue)).content.decode()]
    for _ in range(2):
        claimed = Assignment.objects.get(user=alice, status=Assignment.Status.CLAIMED)
        pages.append(htmx(client, skip_url(queue, claimed.item_id)).content.decode())
    for html in pages:
        assert_nothing_executes(html)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    assert "<del>" in pages[1]  # the label's diff was rendered, escaped
    assert '<a href="https://example.com/guide" rel="noopener noreferrer">ok</a>' in pages[0]
    assert "<h1>Rules</h1>" in pages[0]


# Query counts -----------------------------------------------------------------------------


def test_work_page_costs_the_same_queries_with_10_or_1000_items(queue, alice):
    big = queue_like(queue, "Big", [alice])
    make_items(queue, 10)
    make_items(big, 1000)
    client = logged_in(alice)
    with CaptureQueriesContext(connection) as small_claim:
        assert client.get(work_url(queue)).status_code == 200
    with CaptureQueriesContext(connection) as big_claim:
        assert client.get(work_url(big)).status_code == 200
    with CaptureQueriesContext(connection) as big_resume:
        assert client.get(work_url(big)).status_code == 200
    assert len(small_claim) == len(big_claim)
    assert len(big_resume) <= len(big_claim)


def test_submit_costs_the_same_queries_with_10_or_1000_items(queue, alice):
    big = queue_like(queue, "Big", [alice])
    small_items, big_items = make_items(queue, 10), make_items(big, 1000)
    client = logged_in(alice)
    client.get(work_url(queue))
    client.get(work_url(big))
    with CaptureQueriesContext(connection) as small:
        htmx(client, submit_url(queue, small_items[0]), GOOD_FORM)
    with CaptureQueriesContext(connection) as large:
        htmx(client, submit_url(big, big_items[0]), GOOD_FORM)
    assert len(small) == len(large)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # requests commit, as served
def test_submit_and_the_next_item_take_at_most_12_queries(
    queue, alice, bob, django_assert_max_num_queries
):
    """The annotator's hot path (issue 12): session, user, the queue with the annotator's
    count and its questions; the answer (BEGIN, item lock, one statement that also moves the
    queue's counters when it completes the item, COMMIT); the next claim (BEGIN, the first
    free item with what the page shows, the guarded claim, COMMIT)."""
    items = make_items(queue, 50)
    for item in items[:2]:  # alice's first two answers complete their items (2 per item)
        annotation_submit(item=item, user=bob, answers={"better": "tie", "quality": 3})
    client = logged_in(alice)
    client.get(work_url(queue))
    for _ in range(3):
        claimed = Assignment.objects.get(queue=queue, user=alice, status="claimed")
        with django_assert_max_num_queries(12):
            response = htmx(client, submit_url(queue, claimed.item_id), GOOD_FORM)
        assert response.status_code == 200
        assert f"Saved your answers to item {claimed.item_id}" in response.content.decode()
        following = Assignment.objects.get(queue=queue, user=alice, status="claimed")
        assert following.item_id != claimed.item_id
        assert f"Item {following.item_id}</h2>" in response.content.decode()
    assert "you: 3" in response.content.decode()
    queue.refresh_from_db()
    assert (queue.items_open, queue.items_complete) == (48, 2)


def test_progress_counts_the_answer_just_given(queue, alice):
    make_items(queue, 3)
    client = logged_in(alice)
    assert "you: 0" in client.get(work_url(queue)).content.decode()
    claimed = Assignment.objects.get(queue=queue, user=alice, status="claimed")
    assert "you: 1" in htmx(client, submit_url(queue, claimed.item_id), GOOD_FORM).content.decode()
    again = htmx(client, submit_url(queue, claimed.item_id), GOOD_FORM).content.decode()
    assert "already answered" in again and "you: 1" in again


def test_submit_to_an_item_of_another_queue_is_404_and_stores_nothing(queue, alice):
    other = queue_like(queue, "Other", [alice])
    foreign = make_items(other, 1)[0]
    client = logged_in(alice)
    assert client.post(submit_url(queue, foreign), GOOD_FORM).status_code == 404
    assert client.post(submit_url(queue, 10**9), GOOD_FORM).status_code == 404
    assert client.post(submit_url(queue, foreign), {"answer-better": "x"}).status_code == 404
    assert not Annotation.objects.exists()


def test_overview_costs_the_same_queries_however_much_work_was_done(queue, alice, bob, carol):
    items = make_items(queue, 30)
    lead = logged_in(carol)
    with CaptureQueriesContext(connection) as before:
        lead.get(f"/review/q/{queue.pk}/overview")
    for user in (alice, bob):
        client = logged_in(user)
        for item in items[:10]:
            client.post(submit_url(queue, item), {**GOOD_FORM, "seconds_spent": "3"})
        client.post(skip_url(queue, items[10]))
    with CaptureQueriesContext(connection) as after:
        response = lead.get(f"/review/q/{queue.pk}/overview")
    assert len(after) == len(before)
    html = response.content.decode()
    assert '<th scope="row">alice</th>' in html
    assert '<td class="num">10</td>' in html  # annotations
    assert '<td class="num">3.0</td>' in html  # median seconds


# Overview ---------------------------------------------------------------------------------


def test_overview_counts_statuses_annotators_and_pace(queue, alice, bob, carol):
    items = make_items(queue, 4)
    for user in (alice, bob):
        client = logged_in(user)
        client.post(submit_url(queue, items[0]), {**GOOD_FORM, "seconds_spent": "10"})
    logged_in(alice).post(submit_url(queue, items[1]), {**GOOD_FORM, "seconds_spent": "20"})
    logged_in(bob).post(skip_url(queue, items[2]))
    item_adjudicate(item=items[3], lead=carol, decision="discarded")

    html = logged_in(carol).get(f"/review/q/{queue.pk}/overview").content.decode()
    assert '<th scope="row">Open</th><td class="num">2</td>' in html
    assert '<th scope="row">Complete</th><td class="num">1</td>' in html
    assert '<th scope="row">Discarded</th><td class="num">1</td>' in html
    assert '<th scope="row">24 hours</th><td class="num">3</td>' in html
    assert row_cells(html, "alice") == ["2", "0", "15.0", "2", "2"]
    assert row_cells(html, "bob") == ["1", "1", "10.0", "1", "1"]


def row_cells(html: str, username: str) -> list[str]:
    """An overview row: annotations, skips, median seconds, last 24 h, last 7 days."""
    row = html[html.index(f'<th scope="row">{username}</th>') :].split("</tr>")[0]
    return [cell.split("<")[0] for cell in row.split('<td class="num">')[1:]]


def test_rating_scales_beyond_nine_values_use_a_labelled_select(queue, alice):
    Question.objects.filter(queue=queue, key="quality").update(min_value=0, max_value=10)
    make_items(queue, 1)
    html = logged_in(alice).get(work_url(queue)).content.decode()
    assert '<label for="q-quality">Quality' in html
    assert '<select id="q-quality" name="answer-quality" required>' in html


def test_blind_comparison_does_not_reveal_which_answer_the_user_preferred(queue, alice, project):
    edit_label_item(queue, project)
    html = logged_in(alice).get(f"/review/q/{queue.pk}/").content.decode()
    assert "Claim to check" not in html  # the queue asks "left or right?"
    queue.questions.filter(key="better").update(choices=["yes", "no", "unsure"])
    html = logged_in(alice).get(f"/review/q/{queue.pk}/").content.decode()
    assert "Claim to check" in html  # asking whether the derived label is right needs it
