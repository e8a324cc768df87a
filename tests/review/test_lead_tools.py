"""The lead's tools on a queue: flags and skips, search and filters on the item list, the
gate's reasons beside every verdict, one item's page with reopen and release."""

from __future__ import annotations

import pytest
from django.utils import timezone

from review import gate
from review.claims import annotation_submit, item_skip
from review.models import Item, ItemFlag, Queue
from review.selectors import decision_reason_text
from review.services import items_add
from tenancy.models import Membership
from tests.conftest import make_user
from tests.review.conftest import make_items
from tests.review.test_lead_pages import disputed
from tests.review.test_views import edit_label_item, logged_in, queue_like

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
HUGE = str(2**64)


def url(queue: Queue, page: str = "") -> str:
    return f"/review/q/{queue.pk}/{page}"


def items_url(queue: Queue, query: str = "") -> str:
    return url(queue, "items") + (f"?{query}" if query else "")


def flag(item: Item, user, reason: str = "The prompt is cut off.") -> ItemFlag:
    return ItemFlag.objects.create(item=item, queue=item.queue, user=user, reason=reason)


def listed(html: str, item: Item) -> bool:
    return f'<th scope="row">{item.pk}</th>' in html


def verdict(item: Item, **fields) -> None:
    Item.objects.filter(pk=item.pk).update(**fields)


@pytest.fixture
def leo(django_user_model, other_project):
    """A lead of another project."""
    return make_user(django_user_model, "leo", other_project, Membership.Role.LEAD)


# Who may see what -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "leo"])
def test_annotators_and_leads_of_other_projects_get_404_on_every_new_lead_page(
    request, queue, alice, carol, who
):
    (item,) = make_items(queue, 1)
    verdict(item, held_out=True, decision="accepted", status="complete")
    open_flag = flag(item, alice)
    client = logged_in(request.getfixturevalue(who))
    pages = [
        ("get", url(queue, "flags"), {}),
        ("post", url(queue, f"flags/{open_flag.pk}/resolve"), {"note": "done"}),
        ("get", url(queue, f"items/{item.pk}"), {}),
        ("post", url(queue, f"items/{item.pk}/reopen"), {}),
        ("post", url(queue, f"items/{item.pk}/release"), {}),
        ("get", items_url(queue, "q=Question&annotator=alice"), {}),
    ]
    for method, path, data in pages:
        assert getattr(client, method)(path, data).status_code == 404, path
    item.refresh_from_db()
    open_flag.refresh_from_db()
    assert item.held_out and item.reopened_at is None and open_flag.resolved_at is None


def test_anonymous_visitor_is_sent_to_login_from_the_flags_and_item_pages(client, queue):
    (item,) = make_items(queue, 1)
    for path in (url(queue, "flags"), url(queue, f"items/{item.pk}")):
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_ids_beyond_the_database_range_are_404_not_500(queue, carol):
    client = logged_in(carol)
    assert client.get(f"/review/q/{HUGE}/flags").status_code == 404
    assert client.get(f"/review/q/{HUGE}/items").status_code == 404
    assert client.get(url(queue, f"items/{HUGE}")).status_code == 404
    assert client.post(url(queue, f"items/{HUGE}/reopen")).status_code == 404
    assert client.post(url(queue, f"items/{HUGE}/release")).status_code == 404
    assert client.post(url(queue, f"flags/{HUGE}/resolve"), {"note": ""}).status_code == 404


# Flags and skips --------------------------------------------------------------------------


def test_lead_home_counts_each_queues_open_flags(queue, alice, bob, carol):
    other = queue_like(queue, "Other", [alice])
    items = make_items(queue, 3)
    flag(items[0], alice)
    flag(items[1], bob)
    ItemFlag.objects.filter(pk=flag(items[2], bob).pk).update(resolved_at=timezone.now())
    html = logged_in(carol).get("/review/lead/").content.decode()
    assert "<strong>2 open flags</strong>" in html
    assert f'href="{url(other, "flags")}">Flags<' in html  # none open: no count


def test_flags_page_lists_open_flags_of_this_queue_and_skips_with_their_reasons(
    queue, alice, bob, carol
):
    other = queue_like(queue, "Other", [alice])
    first, second, third = make_items(queue, 3)
    flag(first, alice, reason=f"Answer is off topic {SCRIPT}")
    resolved = flag(second, bob, reason="Resolved one")
    ItemFlag.objects.filter(pk=resolved.pk).update(resolved_at=timezone.now())
    (foreign,) = make_items(other, 1)
    flag(foreign, alice, reason="Another queue's flag")
    item_skip(item=third, user=bob, reason="Not my language")
    item_skip(item=second, user=alice)

    html = logged_in(carol).get(url(queue, "flags")).content.decode()
    assert 'Open flags <span class="muted">(1)</span>' in html
    assert "Answer is off topic &lt;script&gt;" in html and SCRIPT not in html
    assert "Resolved one" not in html and "Another queue&#x27;s flag" not in html
    assert f'href="{url(queue, f"items/{first.pk}")}">Item {first.pk}</a>' in html
    assert 'Skipped items <span class="muted">(2)</span>' in html
    assert "Not my language" in html and "(no reason given)" in html


def test_resolving_a_flag_records_who_when_and_the_note(queue, alice, carol):
    (item,) = make_items(queue, 1)
    open_flag = flag(item, alice)
    client = logged_in(carol)
    response = client.post(url(queue, f"flags/{open_flag.pk}/resolve"), {"note": " Fixed it. "})
    assert response.status_code == 302 and response["Location"] == url(queue, "flags")
    open_flag.refresh_from_db()
    assert open_flag.resolved_by == carol and open_flag.resolution == "Fixed it."
    assert open_flag.resolved_at is not None
    page = client.get(url(queue, "flags")).content.decode()
    assert f"The flag on item {item.pk} is resolved." in page and "No open flags." in page

    again = client.post(url(queue, f"flags/{open_flag.pk}/resolve"), {"note": "Twice"}, follow=True)
    assert f"The flag on item {item.pk} was resolved already." in again.content.decode()
    open_flag.refresh_from_db()
    assert open_flag.resolution == "Fixed it."  # the first resolution stands


def test_a_flag_resolves_without_a_note(queue, alice, carol):
    (item,) = make_items(queue, 1)
    open_flag = flag(item, alice)
    logged_in(carol).post(url(queue, f"flags/{open_flag.pk}/resolve"))
    open_flag.refresh_from_db()
    assert open_flag.resolved_at is not None and open_flag.resolution == ""


@pytest.mark.parametrize("note", ["a\x00b", "x" * 5001])
def test_a_bad_resolution_note_is_400_naming_the_field_and_resolves_nothing(
    queue, alice, carol, note
):
    (item,) = make_items(queue, 1)
    open_flag = flag(item, alice)
    response = logged_in(carol).post(url(queue, f"flags/{open_flag.pk}/resolve"), {"note": note})
    html = response.content.decode()
    assert response.status_code == 400
    assert "<code>note</code>" in html and f'id="note-{open_flag.pk}-error"' in html
    open_flag.refresh_from_db()
    assert open_flag.resolved_at is None


def test_a_flag_of_another_queue_is_404_and_stays_open(queue, alice, carol):
    other = queue_like(queue, "Other", [alice])
    (foreign,) = make_items(other, 1)
    foreign_flag = flag(foreign, alice)
    response = logged_in(carol).post(url(queue, f"flags/{foreign_flag.pk}/resolve"))
    assert response.status_code == 404
    foreign_flag.refresh_from_db()
    assert foreign_flag.resolved_at is None


def test_flags_page_costs_the_same_queries_for_5_or_50_flags(
    queue, alice, bob, carol, django_assert_max_num_queries, django_assert_num_queries
):
    small, big = queue, queue_like(queue, "Big", [alice, bob])
    for target, n in ((small, 5), (big, 50)):
        for item in make_items(target, n):
            flag(item, alice)
            item_skip(item=item, user=bob, reason="Unclear")
    client = logged_in(carol)
    client.get(url(small, "flags"))  # the session is read once, warm
    with django_assert_max_num_queries(12) as few:
        assert client.get(url(small, "flags")).content.decode().count("Resolve<span") == 5
    with django_assert_num_queries(len(few.captured_queries)):
        assert client.get(url(big, "flags")).content.decode().count("Resolve<span") == 50


def test_lead_home_costs_the_same_queries_for_one_or_three_queues(
    queue, alice, carol, django_assert_max_num_queries, django_assert_num_queries
):
    client = logged_in(carol)
    client.get("/review/lead/")
    with django_assert_max_num_queries(6) as one:
        client.get("/review/lead/")
    for name in ("Two", "Three"):
        flag(make_items(queue_like(queue, name, [alice]), 1)[0], alice)
    with django_assert_num_queries(len(one.captured_queries)):
        assert client.get("/review/lead/").content.decode().count("open flag") == 2


# Search and filters -----------------------------------------------------------------------


def test_text_search_finds_free_content_by_prompt_and_response_in_any_case(queue, carol):
    items_add(
        queue=queue,
        items=[
            {"content": {"prompt": "How do I reset my PASSWORD?", "responses": ["A", "B"]}},
            {"content": {"prompt": "Weather?", "responses": ["Sunny, reset later", "Rain"]}},
            {"content": {"prompt": "Recipes?", "responses": ["Soup", "Bread"]}},
        ],
    )
    reset_prompt, reset_response, other = Item.objects.order_by("id")
    html = logged_in(carol).get(items_url(queue, "q=Reset")).content.decode()
    assert listed(html, reset_prompt) and listed(html, reset_response)
    assert not listed(html, other)
    assert 'Matching items <span class="muted">(2)</span>' in html
    assert 'value="Reset"' in html  # the search stays in its box


def test_text_search_reads_the_labels_text_the_item_shows(queue, project, carol):
    label_item = edit_label_item(queue, project)
    (free,) = make_items(queue, 1)
    html = logged_in(carol).get(items_url(queue, "q=grew+5%25")).content.decode()
    assert listed(html, label_item) and not listed(html, free)  # the user's edit
    html = logged_in(carol).get(items_url(queue, "q=summarise+this")).content.decode()
    assert listed(html, label_item) and not listed(html, free)  # the prompt


def test_percent_and_underscore_in_a_search_are_literal(queue, carol):
    items_add(queue=queue, items=[{"content": {"prompt": "100% sure", "responses": ["a"]}}])
    (plain,) = make_items(queue, 1)
    html = logged_in(carol).get(items_url(queue, "q=%25")).content.decode()
    assert not listed(html, plain) and "(1)</span>" in html


def test_status_verdict_and_flag_filters(queue, alice, carol):
    accepted, excluded, disputed_item, open_item = make_items(queue, 4)
    verdict(accepted, status="complete", agreement_state="agreed", decision="accepted")
    verdict(excluded, status="complete", agreement_state="agreed", decision="excluded")
    verdict(disputed_item, status="complete", agreement_state="disputed")
    flag(open_item, alice)
    ItemFlag.objects.filter(pk=flag(accepted, alice).pk).update(resolved_at=timezone.now())
    client = logged_in(carol)
    expected = {
        "status=complete": {accepted, excluded, disputed_item},
        "status=open": {open_item},
        "verdict=agreed": {accepted, excluded},
        "verdict=accepted": {accepted},
        "verdict=excluded": {excluded},
        "verdict=disputed": {disputed_item},
        "verdict=undecided": {disputed_item, open_item},
        "flagged=open": {open_item},
        "flagged=any": {open_item, accepted},
        "flagged=none": {accepted, excluded, disputed_item},
        "status=complete&verdict=agreed&flagged=none": {accepted, excluded},
    }
    everything = {accepted, excluded, disputed_item, open_item}
    for query, items in expected.items():
        html = client.get(items_url(queue, query)).content.decode()
        assert {i for i in everything if listed(html, i)} == items, query


def test_annotator_filter_lists_the_items_they_answered(queue, alice, bob, carol):
    first, second, third = make_items(queue, 3)
    annotation_submit(item=first, user=alice, answers={"better": "left", "quality": 4})
    annotation_submit(item=second, user=alice, answers={"better": "left", "quality": 4})
    annotation_submit(item=second, user=bob, answers={"better": "left", "quality": 4})
    annotation_submit(item=third, user=bob, answers={"better": "left", "quality": 4})
    client = logged_in(carol)
    html = client.get(items_url(queue, "annotator=alice")).content.decode()
    assert listed(html, first) and listed(html, second) and not listed(html, third)
    html = client.get(items_url(queue, "annotator=bob&q=Question+2")).content.decode()
    assert listed(html, third) and not listed(html, second)
    assert '<option value="alice">' in html  # names suggested from the queue's members


def test_filters_survive_acting_on_the_list(queue, alice, carol):
    items = make_items(queue, 2)
    query = "q=Question&status=open&annotator=alice&page=1"
    response = logged_in(carol).post(
        url(queue, "held-out") + f"?{query}", {"item_ids": [items[0].pk]}
    )
    assert response.status_code == 302
    assert response["Location"] == items_url(queue, "q=Question&status=open&annotator=alice")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("q=a%00b", "q"),
        ("q=" + "x" * 201, "q"),
        ("status=lost", "status"),
        ("verdict=maybe", "verdict"),
        ("flagged=sometimes", "flagged"),
        ("show=everything", "show"),
        ("annotator=nobody", "annotator"),
        ("annotator=leo", "annotator"),  # a user, but of another project
        ("annotator=a%00", "annotator"),
        (f"annotator={'x' * 151}", "annotator"),
    ],
)
def test_bad_filters_are_400_naming_the_field_and_list_nothing(queue, carol, leo, query, field):
    (item,) = make_items(queue, 1)
    response = logged_in(carol).get(items_url(queue, query))
    html = response.content.decode()
    assert response.status_code == 400
    assert f"<code>{field}</code>" in html and 'aria-invalid="true"' in html
    assert not listed(html, item)


def test_a_page_beyond_the_last_shows_the_last(queue, carol):
    (item,) = make_items(queue, 1)
    response = logged_in(carol).get(items_url(queue, f"page={HUGE}"))
    assert response.status_code == 200 and listed(response.content.decode(), item)


def test_filtered_items_page_costs_the_same_queries_for_5_or_50_items(
    queue, alice, bob, carol, django_assert_max_num_queries, django_assert_num_queries
):
    small, big = queue, queue_like(queue, "Big", [alice, bob])
    for target, n in ((small, 5), (big, 50)):
        for item in disputed(target, alice, bob, n):
            flag(item, alice)
    client = logged_in(carol)
    query = "q=Question&status=complete&verdict=disputed&flagged=open&annotator=alice"
    client.get(items_url(small, query))
    with django_assert_max_num_queries(14) as few:
        html = client.get(items_url(small, query)).content.decode()
        assert html.count("flagged</span>") == 5
    with django_assert_num_queries(len(few.captured_queries)):
        html = client.get(items_url(big, query)).content.decode()
        assert html.count("flagged</span>") == 50


# The gate's reasons -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("needs more annotations", "Waiting for more annotations."),
        ("disputed: for a lead", "Annotators disagree: waiting for a lead's decision."),
        ("item discarded", "The item was discarded."),
        (
            "queue alpha below 0.667: better alpha 0.61",
            "The queue's agreement (alpha) is below its minimum of 0.667: better alpha 0.61.",
        ),
        ("reviewers agreed: yes", "Reviewers agreed: yes."),
        ("reviewers preferred response_1", "Reviewers preferred response 1."),
        ("adjudicated: rejected", "Decided by a lead: rejected."),
        ("", ""),
    ],
)
def test_the_gates_reasons_read_as_sentences(stored, shown):
    assert decision_reason_text(stored) == shown


def test_the_verdicts_reason_is_shown_on_the_item_list_and_the_item_page(queue, carol):
    (item,) = make_items(queue, 1)
    verdict(
        item,
        status="complete",
        agreement_state="agreed",
        agreement=0.67,
        decision="excluded",
        decision_reason="queue alpha below 0.667: better alpha 0.2",
    )
    reason = "The queue&#x27;s agreement (alpha) is below its minimum of 0.667: better alpha 0.2."
    client = logged_in(carol)
    listing = client.get(url(queue, "items")).content.decode()
    assert "Agreed (0.67)" in listing and "Excluded" in listing and reason in listing
    page = client.get(url(queue, f"items/{item.pk}")).content.decode()
    assert reason in page and 'id="verdict-reason"' in page


def test_the_disputed_page_says_why_each_item_waits(queue, alice, bob, carol):
    disputed(queue, alice, bob, 2)
    html = logged_in(carol).get(url(queue, "disputed")).content.decode()
    assert html.count("Annotators disagree: waiting for a lead&#x27;s decision.") == 2


def test_a_real_gate_run_shows_its_reason(queue, alice, bob, carol):
    items = make_items(queue, 3)
    for item in items:
        annotation_submit(item=item, user=alice, answers={"better": "left", "quality": 4})
        annotation_submit(item=item, user=bob, answers={"better": "left", "quality": 4})
    gate.queue_agreement_recompute(queue=queue)
    items[0].refresh_from_db()
    assert items[0].decision_reason  # the gate wrote one
    html = logged_in(carol).get(url(queue, f"items/{items[0].pk}")).content.decode()
    assert decision_reason_text(items[0].decision_reason).replace("'", "&#x27;") in html


# One item: whole content, reopen, release; gold with the whole item ----------------------


def test_item_page_shows_content_answers_flags_and_skips(queue, alice, bob, carol):
    (item,) = items_add(
        queue=queue, items=[{"content": {"prompt": "Long " * 40 + SCRIPT, "responses": ["A"]}}]
    )
    item = Item.objects.get(pk=item)
    annotation_submit(item=item, user=alice, answers={"better": "tie", "quality": 3})
    flag(item, alice, reason="Too long to read")
    item_skip(item=item, user=bob, reason="No time")
    html = logged_in(carol).get(url(queue, f"items/{item.pk}")).content.decode()
    assert "<h1>Item" in html and SCRIPT not in html
    assert '<th scope="row">alice</th>' in html and "tie" in html
    assert "Too long to read" in html and "No time" in html
    assert "Reopen for changes" not in html  # no final verdict yet


def test_lead_reopens_an_item_whose_verdict_is_final(queue, carol):
    (item,) = make_items(queue, 1)
    verdict(item, status="complete", agreement_state="agreed", decision="accepted")
    client = logged_in(carol)
    assert "Reopen for changes" in client.get(url(queue, f"items/{item.pk}")).content.decode()
    response = client.post(url(queue, f"items/{item.pk}/reopen"), follow=True)
    item.refresh_from_db()
    assert item.reopened_at is not None and item.reopened_by == carol
    assert f"Item {item.pk} is reopened" in response.content.decode()


def test_reopening_an_item_without_a_final_verdict_changes_nothing(queue, carol):
    (item,) = make_items(queue, 1)
    response = logged_in(carol).post(url(queue, f"items/{item.pk}/reopen"), follow=True)
    item.refresh_from_db()
    assert item.reopened_at is None
    assert f"Item {item.pk} was not reopened." in response.content.decode()


def test_a_held_out_item_is_released_and_can_be_held_out_again(queue, carol):
    (item,) = make_items(queue, 1)
    verdict(item, held_out=True)
    client = logged_in(carol)
    assert "Release from hold-out" in client.get(url(queue, f"items/{item.pk}")).content.decode()
    response = client.post(url(queue, f"items/{item.pk}/release"), {"back": "item"})
    assert response["Location"] == url(queue, f"items/{item.pk}")
    item.refresh_from_db()
    assert not item.held_out
    page = client.get(response["Location"]).content.decode()
    assert f"Item {item.pk} is released from the hold-out" in page

    again = client.post(url(queue, f"items/{item.pk}/release"), follow=True)
    assert f"Item {item.pk} was not held out." in again.content.decode()
    client.post(url(queue, "held-out"), {"item_ids": [item.pk]})
    item.refresh_from_db()
    assert item.held_out


def test_release_from_the_item_list_returns_to_the_filtered_list(queue, carol):
    (item,) = make_items(queue, 1)
    verdict(item, held_out=True)
    client = logged_in(carol)
    html = client.get(items_url(queue, "show=held_out")).content.decode()
    assert f'action="{url(queue, f"items/{item.pk}/release")}?show=held_out"' in html
    response = client.post(url(queue, f"items/{item.pk}/release") + "?show=held_out")
    assert response["Location"] == items_url(queue, "show=held_out")


def test_marking_gold_shows_the_whole_item(queue, carol):
    prompt = "Please explain, in full detail and with examples, " + "why " * 30 + "END."
    items_add(queue=queue, items=[{"content": {"prompt": prompt, "responses": ["One", "Two"]}}])
    html = logged_in(carol).get(url(queue, "items")).content.decode()
    gold_part = html.split('class="gold-item"')[1].split("</form>")[0]
    assert "END." in gold_part and "One" in gold_part and "Two" in gold_part


def test_text_search_finds_words_beyond_ascii(queue, carol):
    items_add(
        queue=queue,
        items=[
            {"content": {"prompt": "Translate", "responses": ["Die Größe zählt", "Size"]}},
            {"content": {"prompt": [{"role": "user", "content": "Café au lait?"}]}},
        ],
    )
    in_response, in_message = Item.objects.order_by("id")
    client = logged_in(carol)
    assert listed(client.get(items_url(queue, "q=größe")).content.decode(), in_response)
    assert listed(client.get(items_url(queue, "q=café")).content.decode(), in_message)


def test_undecodable_bytes_in_a_search_are_never_a_500(queue, carol):
    make_items(queue, 1)
    response = logged_in(carol).get(items_url(queue, "q=%ED%A0%80&annotator=%FF"))
    assert response.status_code in (200, 400)


def test_an_item_of_another_queue_has_no_page_here(queue, alice, carol):
    other = queue_like(queue, "Other", [alice])
    (foreign,) = make_items(other, 1)
    client = logged_in(carol)
    assert client.get(url(queue, f"items/{foreign.pk}")).status_code == 404
    assert client.get(url(other, f"items/{foreign.pk}")).status_code == 200
