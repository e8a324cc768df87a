"""Issue 9, the review side: bad input is a 4xx naming the field, access follows project
membership, guideline images stay on this site, and a claim never reports "nothing left"
while claimable items remain."""

from __future__ import annotations

import json
import logging
import re
import socket
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from core.storable import INT_MAX, INT_MIN, json_problem
from review.answers import MAX_TEXT_ANSWER, AnswersInvalid, validate_answers
from review.claims import annotation_submit
from review.gate import queue_agreement_recompute
from review.models import (
    Adjudication,
    AgreementSnapshot,
    Annotation,
    AnnotatorExclusion,
    Assignment,
    Item,
    Question,
    Queue,
)
from review.selectors import queues_with_stale_agreement
from review.tasks import recompute_stale_agreements
from review.templatetags.review_text import markdown_sanitised
from tenancy.models import Membership
from tests.conftest import token_client
from tests.review.conftest import GOOD, make_items

pytestmark = pytest.mark.django_db


class Tags(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# Queue access follows project membership ---------------------------------------------------


def test_removed_project_member_loses_every_queue_page_and_endpoint(queue, alice, bob):
    item = make_items(queue, 2)[0]
    api, page = token_client(alice), logged_in(alice)
    assert api.post(f"/api/v1/queues/{queue.pk}/next").status_code == 200  # before: works

    Membership.objects.filter(user=alice, project=queue.project).delete()

    assert alice in queue.members.all()  # still listed: access must not depend on it alone
    assert api.get("/api/v1/queues").json()["queues"] == []
    base = f"/api/v1/queues/{queue.pk}"
    assert api.get(base).status_code == 404
    assert api.post(f"{base}/next").status_code == 404
    assert (
        api.post(
            f"{base}/items/{item.pk}/annotations", {"answers": GOOD}, format="json"
        ).status_code
        == 404
    )
    assert api.post(f"{base}/items/{item.pk}/skip").status_code == 404
    assert page.get("/review/").content.decode().count(queue.name) == 0
    assert page.get(f"/review/q/{queue.pk}/").status_code == 404
    submit = page.post(f"/review/q/{queue.pk}/items/{item.pk}/submit", {"answer-better": "left"})
    assert submit.status_code == 404
    assert page.post(f"/review/q/{queue.pk}/items/{item.pk}/skip").status_code == 404
    assert not Assignment.objects.filter(user=alice).exclude(status="claimed").exists()
    # bob, still a member of the project, keeps his access.
    assert token_client(bob).post(f"{base}/next").status_code == 200


def test_lead_keeps_access_without_being_a_queue_member(queue, carol):
    assert carol not in queue.members.all()
    assert logged_in(carol).get(f"/review/q/{queue.pk}/").status_code == 200


# Guideline images --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "src",
    [
        "//evil.example/pixel.png",
        "https://evil.example/pixel.png",
        "http://evil.example/pixel.png",
        "/\\evil.example/pixel.png",
        "\\\\evil.example/pixel.png",
        " //evil.example/pixel.png",
        "/\t/evil.example/pixel.png",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "data:image/svg+xml,<svg onload=alert(1)>",
    ],
)
def test_guideline_images_from_other_hosts_are_not_fetched(src):
    html = str(markdown_sanitised(f'Look: <img src="{src}" alt="x"> and ![y]({src})'))
    sources = [attrs["src"] for tag, attrs in Tags(html).tags if tag == "img" and "src" in attrs]
    for source in sources:  # resolved as a browser would, from a page of this site
        url = urljoin("https://gleaner.test/review/", re.sub(r"[\t\n\r]", "", source).strip())
        assert urlsplit(url.replace("\\", "/")).netloc == "gleaner.test", source
    # A refused address may stay as text ("![y](javascript:...)"), never in an attribute.
    urls = [v for _, attrs in Tags(html).tags for k, v in attrs.items() if k in ("src", "href")]
    assert not [u for u in urls if "javascript" in u or "text/html" in u or "svg" in u], urls


@pytest.mark.parametrize(
    "src", ["/static/review/example.png", "/media/a.png", "data:image/png;base64,iVBORw0KGgo="]
)
def test_guideline_images_from_this_site_or_inline_are_kept(src):
    html = str(markdown_sanitised(f"![example]({src})"))
    assert f'src="{src}"' in html


def test_guideline_links_may_still_go_elsewhere_but_not_to_data_urls():
    html = str(markdown_sanitised("[ok](https://example.org/) [bad](data:text/html,hi)"))
    assert 'href="https://example.org/"' in html
    hrefs = [attrs.get("href", "") for tag, attrs in Tags(html).tags if tag == "a"]
    assert hrefs == ["https://example.org/"]  # the data: link is left as text


def test_work_page_shows_no_foreign_guideline_image(queue, alice):
    queue.guidelines = "![pixel](//tracker.example/p.gif)"
    queue.save()
    make_items(queue, 1)
    html = logged_in(alice).get(f"/review/q/{queue.pk}/").content.decode()
    assert "tracker.example" not in html


# Bad input: a 4xx naming the field, nothing stored ----------------------------------------

NESTED_5000 = "[" * 5000 + "]" * 5000
NESTED_500 = "[" * 500 + "]" * 500


def raw_post(client, url: str, body: str):
    """POST a JSON text as given: NaN, 1e400, lone surrogate escapes and deep nesting
    cannot be produced by the test client's own encoder."""
    return client.post(url, data=body.encode(), content_type="application/json")


def as_json(value) -> str:
    return json.dumps(value)  # ensure_ascii: "\ud800" becomes the escape a browser sends


def assert_refused(response, field: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    body = response.content.decode()  # strict UTF-8: a surrogate echoed back would fail here
    assert field in body, body[:500]


ANSWER_CASES = [
    ('{"better": "left", "quality": 4, "note": "a\\u0000b"}', "note"),
    ('{"better": "left", "quality": 4, "note": "cut \\ud83d emoji"}', "note"),
    ('{"better": "left", "quality": 4, "note": "\\udc00"}', "note"),
    ('{"better": "left", "quality": "\\u00b2"}', "quality"),
    ('{"better": "left", "quality": "\\u0663"}', "quality"),
    ('{"better": "left", "quality": 1099511627776}', "quality"),
    ('{"better": "left", "quality": -9223372036854775808}', "quality"),
    ('{"better": "left", "quality": 1e400}', "quality"),
    ('{"better": "left", "quality": "99999999999999999999999999"}', "quality"),
    ('{"better": "left", "quality": "9' + "9" * 5000 + '"}', "quality"),
    ('{"better": "left", "quality": true}', "quality"),
    ('{"better": "left", "quality": 4, "note": ' + NESTED_500 + "}", "note"),
    ('{"better": ' + NESTED_500 + ', "quality": 4}', "better"),
    ('{"better": "left", "quality": 4, "note": "' + "x" * 5001 + '"}', "note"),
    ('{"better": "left", "quality": 4, "\\ud800": "x"}', "\\\\ud800"),
    ("[1, 2]", "answers"),
    ('"left"', "answers"),
]


@pytest.mark.parametrize(("answers", "field"), ANSWER_CASES)
def test_bad_answer_over_the_api_is_400_naming_the_question(queue, alice, answers, field):
    item = make_items(queue, 1)[0]
    url = f"/api/v1/queues/{queue.pk}/items/{item.pk}/annotations"
    response = raw_post(token_client(alice), url, '{"answers": ' + answers + "}")
    assert_refused(response, field)
    assert not Annotation.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        '{"answers": ' + NESTED_5000 + "}",
        '{"answers": {"note": ' + NESTED_5000 + "}}",
        NESTED_5000,
        '{"answers": {"better": "left", "quality": NaN}}',
        '{"answers": {"better": "left", "quality": Infinity}}',
        '{"answers": {"better": "left"}',
    ],
)
def test_unparseable_or_too_deep_answers_are_400(queue, alice, body):
    item = make_items(queue, 1)[0]
    url = f"/api/v1/queues/{queue.pk}/items/{item.pk}/annotations"
    response = raw_post(token_client(alice), url, body)
    assert response.status_code == 400, response.content[:300]
    assert not Annotation.objects.exists()


@pytest.mark.parametrize("seconds", ["1e400", '"NaN"', '"Infinity"', "-1", "9223372036854775808"])
def test_impossible_seconds_spent_is_400_naming_it(queue, alice, seconds):
    item = make_items(queue, 1)[0]
    url = f"/api/v1/queues/{queue.pk}/items/{item.pk}/annotations"
    body = '{"answers": ' + as_json(GOOD) + ', "seconds_spent": ' + seconds + "}"
    assert_refused(raw_post(token_client(alice), url, body), "seconds_spent")
    assert not Annotation.objects.exists()


def test_whole_number_ratings_in_any_plain_spelling_are_accepted(queue, alice, bob):
    items = make_items(queue, 2)
    url = f"/api/v1/queues/{queue.pk}/items/{{}}/annotations"
    for item, quality in zip(items, [" 4 ", 4.0], strict=True):
        body = {"answers": {"better": "left", "quality": quality}}
        response = token_client(alice).post(url.format(item.pk), body, format="json")
        assert response.status_code == 201, response.json()
    assert sorted(a.answers["quality"] for a in Annotation.objects.all()) == [4, 4]


GOOD_ITEM = {"content": {"prompt": "Which is better?", "responses": ["A", "B"]}}
ITEM_CASES = [
    ({"content": {"prompt": "a\u0000b", "responses": ["A", "B"]}}, "prompt"),
    ({"content": {"prompt": "ok", "responses": ["A\u0000", "B"]}}, "responses"),
    (
        {"content": {"prompt": [{"role": "user", "content": "x\u0000"}], "responses": ["A"]}},
        "prompt",
    ),
    (
        {
            "content": {
                "prompt": [{"role": "user", "content": [[[[[[["deep"]]]]]]]}],
                "responses": ["A"],
            }
        },
        "prompt",
    ),
    ({"content": {"prompt": [{"role": "user", "n": 2**70}], "responses": ["A"]}}, "prompt"),
    ({"content": {"prompt": [{"content": "no role"}], "responses": ["A"]}}, "prompt"),
    ({"content": {"prompt": ["not a message"], "responses": ["A"]}}, "prompt"),
    ({"content": {"prompt": "x" * 200_000, "responses": ["A"]}}, "prompt"),
    ({"content": {"prompt": "ok", "responses": ["x" * 200_000]}}, "responses"),
    # Limits count UTF-8 bytes, as for events: 60,000 characters of "é" are 120,000 bytes.
    ({"content": {"prompt": "\u00e9" * 60_000, "responses": ["A"]}}, "prompt"),
    ({"content": {"prompt": "ok", "responses": ["\u00e9" * 60_000]}}, "responses"),
    ({**GOOD_ITEM, "priority": 2**40}, "priority"),
    ({**GOOD_ITEM, "priority": -(2**63)}, "priority"),
    ({**GOOD_ITEM, "priority": 2**63}, "priority"),
    ({**GOOD_ITEM, "priority": "high"}, "priority"),
    ({**GOOD_ITEM, "priority": 1.5}, "priority"),
    ({"label_id": 2**63}, "label_id"),
    ({"label_id": 2**70}, "label_id"),
    ({"generation_id": "g\u0000"}, "generation_id"),
    ({"content": "text"}, "content"),
]


@pytest.mark.parametrize(("item", "field"), ITEM_CASES)
def test_bad_item_is_400_naming_the_field(queue, carol, item, field):
    url = f"/api/v1/queues/{queue.pk}/items"
    assert_refused(raw_post(token_client(carol), url, as_json({"items": [item]})), field)
    assert not Item.objects.exists()


@pytest.mark.parametrize(
    "text", ["cut \ud83d emoji", "\udfff", "a\ud800b"], ids=["high", "low", "inside"]
)
def test_item_content_with_a_lone_surrogate_is_400(queue, carol, text):
    url = f"/api/v1/queues/{queue.pk}/items"
    body = as_json({"items": [{"content": {"prompt": text, "responses": ["A"]}}]})
    assert_refused(raw_post(token_client(carol), url, body), "prompt")
    assert not Item.objects.exists()


def test_item_content_nested_5000_deep_is_400(queue, carol):
    url = f"/api/v1/queues/{queue.pk}/items"
    body = '{"items": [{"content": {"prompt": ' + NESTED_5000 + ', "responses": ["A"]}}]}'
    assert raw_post(token_client(carol), url, body).status_code == 400
    assert not Item.objects.exists()


def queue_body(**change) -> dict:
    body = {
        "project": "acme",
        "name": "Checks",
        "members": ["alice"],
        "questions": [
            {"key": "verdict", "type": "choice", "prompt": "Right?", "choices": ["yes", "no"]},
            {"key": "quality", "type": "rating", "prompt": "Quality", "min": 1, "max": 5},
        ],
    }
    return {**body, **change}


def rating(**change) -> list[dict]:
    return [{"key": "quality", "type": "rating", "prompt": "Quality", "min": 1, "max": 5, **change}]


QUEUE_CASES = [
    (queue_body(name="a\u0000b"), "name"),
    (queue_body(name="a\ud800b"), "name"),
    (queue_body(guidelines="a\u0000b"), "guidelines"),
    (queue_body(guidelines="x" * 60_000), "guidelines"),
    (queue_body(claim_timeout_minutes=2**40), "claim_timeout_minutes"),
    (queue_body(claim_timeout_minutes=2**63), "claim_timeout_minutes"),
    (queue_body(claim_timeout_minutes=100_000), "claim_timeout_minutes"),
    (queue_body(annotations_per_item=2**63), "annotations_per_item"),
    (queue_body(min_alpha="NaN"), "min_alpha"),
    (queue_body(min_item_agreement="Infinity"), "min_item_agreement"),
    (queue_body(agreement_tolerance="1e400"), "agreement_tolerance"),
    (queue_body(agreement_tolerance=1e300), "agreement_tolerance"),
    (queue_body(members=["al\u0000ice"]), "members"),
    (queue_body(members=["x" * 1000]), "members"),
    (queue_body(members="alice"), "members"),
    (queue_body(questions=rating(min=-(2**40))), "min"),
    (queue_body(questions=rating(max=2**40)), "max"),
    (queue_body(questions=rating(min=-(2**63), max=2**63)), "min"),
    (queue_body(questions=rating(min=0, max=1000)), "max"),
    (queue_body(questions=rating(min=-(2**31), max=2**31 - 1)), "max"),
    (queue_body(questions=rating(type="\ud800")), "type"),
    (queue_body(questions=rating(level="\ud800")), "level"),
    (queue_body(questions=rating(prompt="a\u0000")), "prompt"),
    (
        queue_body(
            questions=[{"key": "k", "type": "choice", "prompt": "?", "choices": ["a\u0000", "b"]}]
        ),
        "choices",
    ),
    (queue_body(questions=rating() * 60), "questions"),
    (queue_body(project="ac\u0000me"), "project"),
]


@pytest.mark.parametrize(("body", "field"), QUEUE_CASES)
def test_bad_queue_is_400_naming_the_field_never_500(carol, alice, body, field):
    before = Queue.objects.count()
    assert_refused(raw_post(token_client(carol), "/api/v1/queues", as_json(body)), field)
    assert Queue.objects.count() == before


def test_queue_body_nested_5000_deep_is_400(carol):
    body = as_json(queue_body())[:-1] + ', "extra": ' + NESTED_5000 + "}"
    assert raw_post(token_client(carol), "/api/v1/queues", body).status_code == 400


def test_a_week_long_claim_timeout_still_claims(carol, alice):
    body = queue_body(claim_timeout_minutes=7 * 24 * 60)
    response = token_client(carol).post("/api/v1/queues", body, format="json")
    assert response.status_code == 201, response.json()
    queue = Queue.objects.get(pk=response.json()["id"])
    make_items(queue, 1)
    assert token_client(alice).post(f"/api/v1/queues/{queue.pk}/next").status_code == 200


LEAD_CASES = [
    ("adjudication", '{"decision": "\\ud800"}', "decision"),
    ("adjudication", '{"decision": "accepted", "note": "a\\u0000"}', "note"),
    ("adjudication", '{"decision": "accepted", "note": "\\udc00"}', "note"),
    ("gold", '{"answers": {"\\ud800": "yes"}}', "\\\\ud800"),
    ("gold", '{"answers": {"better": ' + NESTED_500 + "}}", "better"),
    ("gold", '{"answers": ' + NESTED_5000 + "}", "JSON"),
]


@pytest.mark.parametrize(("action", "body", "field"), LEAD_CASES)
def test_bad_lead_input_on_an_item_is_400(queue, carol, action, body, field):
    item = make_items(queue, 1)[0]
    url = f"/api/v1/queues/{queue.pk}/items/{item.pk}/{action}"
    assert_refused(raw_post(token_client(carol), url, body), field)
    item.refresh_from_db()
    assert item.gold_answers is None and not Adjudication.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"item_ids": [9223372036854775808]}', "item_ids"),
        ('{"item_ids": ["x"]}', "item_ids"),
        ('{"share": "NaN"}', "share"),
        ('{"share": 1e400}', "share"),
        ('{"share": 0.5, "seed": 1180591620717411303424}', "seed"),
    ],
)
def test_bad_hold_out_is_400_naming_the_field(queue, carol, body, field):
    make_items(queue, 2)
    url = f"/api/v1/queues/{queue.pk}/held-out"
    assert_refused(raw_post(token_client(carol), url, body), field)
    assert not Item.objects.filter(held_out=True).exists()


HUGE_ID = 2**70


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", f"/api/v1/queues/{HUGE_ID}"),
        ("post", f"/api/v1/queues/{HUGE_ID}/next"),
        ("post", f"/api/v1/queues/{{queue}}/items/{HUGE_ID}/skip"),
        ("get", f"/review/q/{HUGE_ID}/"),
    ],
)
def test_ids_beyond_64_bits_in_paths_are_404(queue, alice, method, path):
    client = token_client(alice) if path.startswith("/api/") else logged_in(alice)
    response = getattr(client, method)(path.format(queue=queue.pk))
    assert response.status_code == 404


# The same on the pages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"answer-note": "a\x00b"}, "q-note"),
        ({"answer-quality": "\u00b2"}, "q-quality"),
        ({"answer-quality": "\u0663"}, "q-quality"),
        ({"answer-quality": "9" * 30}, "q-quality"),
        ({"answer-quality": "9" * 5000}, "q-quality"),
        ({"answer-note": "x" * 5001}, "q-note"),
    ],
)
def test_bad_answer_on_the_work_page_is_400_naming_the_question(queue, alice, form, field):
    item = make_items(queue, 1)[0]
    posted = {"answer-better": "left", "answer-quality": "4", **form}
    response = logged_in(alice).post(f"/review/q/{queue.pk}/items/{item.pk}/submit", posted)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'aria-describedby="{field}-error"' in html or f'id="{field}-error"' in html, html[:3000]
    assert not Annotation.objects.exists()


@pytest.mark.parametrize("seconds", ["1e400", "nan", "-5", "1e300", "x"])
def test_impossible_seconds_on_the_work_page_are_dropped_not_stored(queue, alice, seconds):
    item = make_items(queue, 1)[0]
    posted = {"answer-better": "left", "answer-quality": "4", "seconds_spent": seconds}
    logged_in(alice).post(f"/review/q/{queue.pk}/items/{item.pk}/submit", posted)
    assert Annotation.objects.get().seconds_spent is None


@pytest.mark.parametrize("note", ["a\x00b", "x" * 5001])
def test_bad_adjudication_note_on_the_page_is_400_naming_it(queue, carol, note):
    item = make_items(queue, 1)[0]
    response = logged_in(carol).post(
        f"/review/q/{queue.pk}/items/{item.pk}/adjudicate", {"decision": "accepted", "note": note}
    )
    assert response.status_code == 400
    assert not Adjudication.objects.exists()


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"item_ids": ["9" * 30]}, "item_ids"),
        ({"item_ids": ["9" * 5000]}, "item_ids"),
        ({"item_ids": ["-1"]}, "item_ids"),
        ({"share": "nan"}, "share"),
        ({"share": "1e400"}, "share"),
    ],
)
def test_bad_hold_out_on_the_page_is_400(queue, carol, form, field):
    make_items(queue, 1)
    response = logged_in(carol).post(f"/review/q/{queue.pk}/held-out", form)
    assert response.status_code == 400
    assert not Item.objects.filter(held_out=True).exists()


def test_gold_answer_with_nul_on_the_page_is_400(queue, carol):
    item = make_items(queue, 1)[0]
    response = logged_in(carol).post(
        f"/review/q/{queue.pk}/items/{item.pk}/gold", {"gold-better": "left\x00", "gold-x\x00": "1"}
    )
    assert response.status_code == 400
    item.refresh_from_db()
    assert item.gold_answers is None


def test_work_page_of_a_very_wide_rating_scale_asks_for_a_number(queue, alice):
    queue.questions.filter(key="quality").update(min_value=-(2**31), max_value=2**31 - 1)
    make_items(queue, 1)
    response = logged_in(alice).get(f"/review/q/{queue.pk}/")
    assert response.status_code == 200
    assert 'type="number"' in response.content.decode()


# Property tests: whatever a client sends, a 4xx or a stored value ---------------------------

AWKWARD_TEXTS = [
    "\x00",
    "\ud800",
    "\udfff",
    "a\ud83d",
    "\u00b2",
    "\u0663",
    " 4 ",
    "4",
    "-0",
    "left",
]
texts = st.text(st.characters(exclude_categories=()), max_size=30) | st.sampled_from(AWKWARD_TEXTS)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**200])
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4)
)
answer_values = st.sampled_from(["left", "right", "tie", 1, 4, 5, "3"]) | json_values


@given(
    answers=st.dictionaries(
        st.sampled_from(["better", "quality", "note"]) | texts, answer_values, max_size=4
    )
    | json_values
)
@hypothesis_settings(max_examples=400, deadline=None)
def test_answer_validation_returns_only_storable_answers_or_names_the_problem(answers):
    questions = [
        Question(key="better", type="choice", choices=["left", "right", "tie"], required=True),
        Question(key="quality", type="rating", min_value=1, max_value=5, required=True),
        Question(key="note", type="text", required=False),
    ]
    try:
        cleaned = validate_answers(questions, answers)
    except AnswersInvalid as invalid:
        assert invalid.errors
        for key, message in invalid.errors.items():
            (key + message).encode("utf-8")  # can be sent back as JSON or HTML
        return
    assert json_problem(cleaned, max_depth=1, max_text=MAX_TEXT_ANSWER) is None
    assert cleaned["better"] in ("left", "right", "tie")
    assert type(cleaned["quality"]) is int and 1 <= cleaned["quality"] <= 5
    assert set(cleaned) <= {"better", "quality", "note"}


messages = st.lists(
    st.fixed_dictionaries({"role": texts | st.integers()}, optional={"content": json_values}),
    max_size=3,
)
item_bodies = st.fixed_dictionaries(
    {},
    optional={
        "content": st.fixed_dictionaries(
            {},
            optional={
                "prompt": texts | messages | json_values,
                "responses": st.lists(texts, max_size=3) | json_values,
            },
        )
        | json_values,
        "priority": scalars,
        "label_id": scalars,
        "generation_id": scalars,
    },
)


@given(items=st.lists(item_bodies, min_size=1, max_size=3))
@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_item_create_stores_or_refuses_any_body_never_500(queue, carol, items):
    client = token_client(carol)
    before = Item.objects.filter(queue=queue).count()
    body = json.dumps({"items": items})  # NaN and Infinity go out as such: a 400 to parse
    response = raw_post(client, f"/api/v1/queues/{queue.pk}/items", body)
    assert response.status_code in (201, 400), response.content[:300]
    response.content.decode()  # strict UTF-8
    stored = Item.objects.filter(queue=queue).count() - before
    if response.status_code == 400:
        assert stored == 0
        return
    assert stored == len(items)
    for item in Item.objects.filter(pk__in=response.json()["ids"]):  # read back whole
        assert json_problem(item.content, max_depth=8, max_text=10**6) is None
        assert INT_MIN <= item.priority <= INT_MAX


# Agreement scheduling with Redis down; the sweep that catches what it missed -------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_down(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        }
    }


def test_answer_with_redis_down_is_stored_and_answered_201(
    queue, alice, bob, redis_down, caplog, django_capture_on_commit_callbacks
):
    item = make_items(queue, 1)[0]
    url = f"/api/v1/queues/{queue.pk}/items/{item.pk}/annotations"
    with (
        caplog.at_level(logging.WARNING, logger="core.scheduling"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        # Signed in by session: token checks are throttled in the cache, and with it down
        # they answer 503 before anything is stored (config.middleware), as documented.
        session_api = APIClient()
        session_api.force_login(alice)
        api = session_api.post(url, {"answers": GOOD}, format="json")
        page = logged_in(bob).post(
            f"/review/q/{queue.pk}/items/{item.pk}/submit",
            {"answer-better": "left", "answer-quality": "4"},
        )
    assert api.status_code == 201, api.content[:300]
    assert page.status_code == 302
    assert callbacks and "the cache is unavailable" in caplog.text
    assert Annotation.objects.filter(item=item).count() == 2


def test_recompute_button_with_redis_down_says_when_instead_of_failing(queue, carol, redis_down):
    response = logged_in(carol).post(f"/review/q/{queue.pk}/agreement/recompute", follow=True)
    assert response.status_code == 200
    assert "due within a few minutes" in response.content.decode()


def test_sweep_finds_queues_answered_since_their_latest_snapshot(queue, alice, bob):
    items = make_items(queue, 2)
    later = timezone.now() + timedelta(minutes=1)
    assert queues_with_stale_agreement(answered_before=later) == []  # nothing answered
    annotation_submit(item=items[0], user=alice, answers=GOOD)
    assert queues_with_stale_agreement(answered_before=later) == [queue.pk]  # no snapshot
    # Answers still inside the debounce windows are left to the scheduled recomputation.
    assert queues_with_stale_agreement(answered_before=timezone.now() - timedelta(minutes=1)) == []

    queue_agreement_recompute(queue=queue)
    assert queues_with_stale_agreement(answered_before=later) == []  # up to date
    annotation_submit(item=items[0], user=bob, answers=GOOD)
    assert queues_with_stale_agreement(answered_before=later) == [queue.pk]
    queue_agreement_recompute(queue=queue)
    assert queues_with_stale_agreement(answered_before=later) == []

    # An answer changed since (history: reopen and change) makes the queue stale too.
    Annotation.objects.filter(item=items[0], user=bob).update(updated_at=timezone.now())
    assert queues_with_stale_agreement(answered_before=later) == [queue.pk]
    queue_agreement_recompute(queue=queue)
    assert queues_with_stale_agreement(answered_before=later) == []
    # So does a lead's exclusion, and its revocation.
    exclusion = AnnotatorExclusion.objects.create(queue=queue, user=bob, excluded_by=alice)
    assert queues_with_stale_agreement(answered_before=later) == [queue.pk]
    queue_agreement_recompute(queue=queue)
    assert queues_with_stale_agreement(answered_before=later) == []
    AnnotatorExclusion.objects.filter(pk=exclusion.pk).update(revoked_at=timezone.now())
    assert queues_with_stale_agreement(answered_before=later) == [queue.pk]


def test_sweep_task_counts_and_schedules_stale_queues(queue, alice, settings):
    settings.GLEANER_AGREEMENT_DEBOUNCE_SECONDS = 0  # every answer counts as settled
    annotation_submit(item=make_items(queue, 1)[0], user=alice, answers=GOOD)
    assert recompute_stale_agreements() == 1
    if settings.CELERY_TASK_ALWAYS_EAGER:  # in-process: the recomputation ran already
        assert AgreementSnapshot.objects.filter(queue=queue).exists()
        assert recompute_stale_agreements() == 0


def test_review_api_takes_json_only_and_answers_a_huge_form_in_json(carol):
    """A form body with more fields than Django parses used to be an HTML 400 (fuzz F2)."""
    form = "project=acme&name=x" + "&members=a" * 1001
    response = token_client(carol).post(
        "/api/v1/queues", data=form, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response["Content-Type"].startswith("application/json")
    assert not Queue.objects.exists()


@pytest.mark.parametrize(
    "content", ['{"prompt": "a\\u0000b"}', '{"prompt": "\\ud800"}', '{"n": 1e400}']
)
def test_admin_item_form_refuses_json_the_database_cannot_hold(queue, admin_client, content):
    response = admin_client.post(
        "/admin/review/item/add/",
        {
            "queue": queue.pk,
            "content": content,
            "reason": "api",
            "reason_detail": "{}",
            "priority": "0",
            "status": "open",
            "annotation_count": "0",
            "gold_answers": "null",
            "preferred_response": "",
            "decision": "",
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "errorlist" in response.content.decode()
    assert not Item.objects.exists()


def test_question_and_queue_clean_name_unstorable_json_and_wide_scales(queue):
    question = Question(queue=queue, key="k", type="choice", prompt="?", choices=["a\x00", "b"])
    with pytest.raises(ValidationError) as refused:
        question.clean()
    assert "choices" in refused.value.message_dict
    wide = Question(queue=queue, key="r", type="rating", prompt="?", min_value=0, max_value=10**6)
    with pytest.raises(ValidationError) as refused:
        wide.clean()
    assert "max_value" in refused.value.message_dict
    queue.accept_answers = ["\ud800"]
    with pytest.raises(ValidationError) as refused:
        queue.clean()
    assert "accept_answers" in refused.value.message_dict
