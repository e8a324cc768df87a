"""Issue 13, readable answers: model output as sanitised Markdown, prompts that say
"(optional)" once, words on the rating scale, guidelines open on the first visit, and
colours that keep their contrast in light and dark mode."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import Client

from review.models import MAX_GUIDELINES, Question, Queue
from review.services import DEFAULT_QUEUES, QUALITY_ANCHORS, project_queues_ensure
from review.templatetags.review_text import (
    MODEL_MARKDOWN_MAX_CHARS,
    markdown_sanitised,
    model_markdown,
    question_prompt,
)
from tests.conftest import token_client
from tests.review.conftest import GOOD, make_items

pytestmark = pytest.mark.django_db

CSS = Path(__file__).resolve().parents[2] / "static" / "review" / "review.css"


class Parsed(HTMLParser):
    """Every element of a fragment with its attributes, and its text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, {k.lower(): v or "" for k, v in attrs}))

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# Markdown of model output --------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    '<svg onload="alert(1)"><circle r="5"/></svg>',
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click]( java\tscript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[svg](data:image/svg+xml,<svg onload=alert(1)>)",
    "![pixel](https://tracker.example/p.gif)",
    "![pixel](http://tracker.example/p.gif)",
    "![pixel](//tracker.example/p.gif)",
    "![svg](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '![x](https://tracker.example/p.gif "title" onerror=alert(1))',
    "[ref][1]\n\n[1]: javascript:alert(1)",
    "![ref][1]\n\n[1]: https://tracker.example/p.gif",
    "&lt;script&gt;alert(1)&lt;/script&gt; &#60;img src=x onerror=alert(1)&#62;",
    "<iframe src=https://evil.example></iframe>",
    '<div style="background:url(https://evil.example/x)" onclick="alert(1)">box</div>',
    "```html\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n```",
    "`<b onmouseover=alert(1)>hover</b>`",
    "<details open ontoggle=alert(1)><summary>x</summary></details>",
    '<form action="https://evil.example"><button>go</button></form>',
    "<style>body{display:none}</style>",
    "<!-- <script>alert(1)</script> -->",
    "<math><mi xlink:href='javascript:alert(1)'>x</mi></math>",
    "<a href='https://ok.example' onclick='alert(1)' target='_top'>ok</a>",
]


def assert_inert(html: str) -> Parsed:
    parsed = Parsed(html)
    for tag, attrs in parsed.tags:
        assert tag not in {"script", "style", "iframe", "img", "svg", "form", "math", "object"}, (
            tag,
            html,
        )
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert "style" not in attrs and "src" not in attrs, (tag, attrs)
        if "href" in attrs:
            assert urlsplit(attrs["href"].strip()).scheme in {"http", "https", "mailto"}, attrs
            assert set(attrs["rel"].split()) >= {"nofollow", "noopener"}, attrs
    return parsed


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_renders_inert(text):
    assert_inert(str(model_markdown(text)))
    assert_inert(str(model_markdown(f"Some **bold** text.\n\n{text}\n\n* a list")))


def test_raw_html_in_model_output_is_shown_as_text_not_dropped():
    parsed = assert_inert(str(model_markdown('Use <b>bold</b> and <img src=x onerror="a()">')))
    assert "".join(parsed.text).strip() == 'Use <b>bold</b> and <img src=x onerror="a()">'


def test_markdown_of_model_output_is_rendered():
    html = str(
        model_markdown(
            "Open **Settings -> Members**, then [the docs](https://example.org/d).\n\n"
            "1. one\n2. two\n\n```\ndef f():\n    return  1\n```"
        )
    )
    parsed = assert_inert(html)
    tags = [tag for tag, _ in parsed.tags]
    assert "<strong>Settings -&gt; Members</strong>" in html
    assert tags.count("li") == 2 and "ol" in tags
    assert ("a", {"href": "https://example.org/d", "rel": "nofollow noopener noreferrer"}) in (
        parsed.tags
    )
    assert "<pre><code>def f():\n    return  1\n</code></pre>" in html  # whitespace kept


def test_message_content_parts_are_rendered_as_their_text():
    html = str(model_markdown([{"type": "text", "text": "**hi**"}]))
    assert html.strip() == "<p><strong>hi</strong></p>"


def test_over_long_model_output_is_plain_escaped_text():
    html = str(model_markdown("<b>x</b>" * 3_000))
    assert html.startswith('<p class="plain">&lt;b&gt;x&lt;/b&gt;')
    assert_inert(html)


@pytest.mark.parametrize("unit", ["[", "![", "[](", "*a ", "> ", "- "])
def test_pathological_markdown_renders_in_bounded_time(unit):
    """Python-Markdown took two minutes on 20,000 "[": the parser here is about linear.
    The bound is on this process's CPU time, which other load on the machine does not
    stretch as it stretches wall time."""
    text = unit * (MODEL_MARKDOWN_MAX_CHARS // len(unit))
    started = time.process_time()
    assert_inert(str(model_markdown(text)))
    assert time.process_time() - started < 3


@pytest.mark.parametrize("unit", ["[", "![", "[](", "- "])
def test_pathological_guidelines_render_in_bounded_time(unit):
    text = unit * (MAX_GUIDELINES // len(unit))  # the longest guidelines the API takes
    started = time.process_time()  # CPU time, as above
    markdown_sanitised(text)
    assert time.process_time() - started < 3


def test_a_lone_surrogate_is_replaced_not_an_error():
    assert "\ud800" not in str(model_markdown("a\ud800b"))


def test_work_page_renders_model_output_as_markdown_and_the_edit_diff_plain(queue, alice):
    queue.items.all().delete()
    from review.services import items_add

    items_add(
        queue=queue,
        items=[
            {
                "content": {
                    "prompt": "Where do I add **people**?",
                    "responses": [
                        "Open **Settings -> Members** <script>alert(1)</script>",
                        "![x](https://tracker.example/p.gif) [x](javascript:alert(1))",
                    ],
                }
            }
        ],
    )
    html = logged_in(alice).get(f"/review/q/{queue.pk}/").content.decode()
    assert "<strong>Settings -&gt; Members</strong> &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<p>Where do I add <strong>people</strong>?</p>" in html
    assert "tracker.example/p.gif" in html  # shown as text...
    assert 'src="https://tracker.example' not in html  # ...never fetched
    assert 'href="javascript:' not in html  # the link is left as text
    assert (
        '!<a href="https://tracker.example/p.gif" rel="nofollow noopener noreferrer">x</a>' in html
    )
    assert re.search(r"<figcaption>Left answer</figcaption>", html)


def test_lead_item_content_renders_markdown(queue, carol):
    from django.template.loader import render_to_string

    html = render_to_string(
        "review/_item_content.html",
        {
            "display": {
                "id": 1,
                "reason_text": "Low confidence",
                "detail": {},
                "prompt": [{"role": "user", "content": "Is `x` **ok**?"}],
                "responses": [{"side": "response", "text": "<img src=x onerror=a()> *Yes*"}],
                "diff": [("equal", "a **b** "), ("ins", "<i>c</i>")],
            }
        },
    )
    assert "<p>Is <code>x</code> <strong>ok</strong>?</p>" in html
    assert "<p>&lt;img src=x onerror=a()&gt; <em>Yes</em></p>" in html
    assert "a **b** <ins>&lt;i&gt;c&lt;/i&gt;</ins>" in html  # the diff stays plain


# Wording: "(optional)" once, anchors, the high-retry and abandoned questions -------------------


def test_default_prompts_do_not_say_optional_themselves():
    prompts = [q[2] for spec in DEFAULT_QUEUES.values() for q in spec["questions"]]
    assert prompts and not [p for p in prompts if "optional" in p.lower()]


def test_old_prompts_ending_in_optional_say_it_once(queue, alice):
    Question.objects.filter(queue=queue, key="note").update(prompt="Notes (optional)")
    make_items(queue, 1)
    html = logged_in(alice).get(f"/review/q/{queue.pk}/").content.decode()
    label = re.search(r'<label for="q-note">(.*?)</label>', html, re.S)
    assert label is not None
    assert label.group(1).count("(optional)") == 1, label.group(1)
    required = Question(prompt="Why (optional)", required=True)
    assert question_prompt(required) == "Why (optional)"  # a required prompt is left alone


def test_default_quality_scales_have_anchors_shown_on_the_rating(project, alice):
    queues = project_queues_ensure(project=project)
    ratings = Question.objects.filter(queue__project=project, type="rating")
    assert ratings.count() == 2
    assert all(q.anchors == QUALITY_ANCHORS for q in ratings)
    queue = queues[Queue.Reason.ABANDONED]
    queue.members.add(alice)
    make_items(queue, 1)
    html = logged_in(alice).get(f"/review/q/{queue.pk}/").content.decode()
    for point, word in QUALITY_ANCHORS.items():
        assert re.search(
            rf'<label class="option anchored" for="q-quality-{point}">.*?'
            rf'<span>{point}</span> <span class="anchor">{word}</span></label>',
            html,
        ), point


def test_abandoned_and_high_retry_pages_name_what_the_question_asks_about(project, alice):
    queues = project_queues_ensure(project=project)
    abandoned = queues[Queue.Reason.ABANDONED]
    abandoned.members.add(alice)
    abandoned.items.all().delete()
    from review.services import items_add

    items_add(queue=abandoned, items=[{"content": {"prompt": "p", "responses": ["r"]}}])
    abandoned.items.update(reason="abandoned")
    html = logged_in(alice).get(f"/review/q/{abandoned.pk}/").content.decode()
    assert "Did the last answer fail the user?" in html
    assert "The session's last answer</h3>" in html
    guidelines = DEFAULT_QUEUES[Queue.Reason.HIGH_RETRY]["guidelines"]
    assert "*Left*" in guidelines and "*Right*" in guidelines and "chosen" not in guidelines


def test_guidelines_are_open_until_the_first_answer(queue, alice):
    items = make_items(queue, 2)
    client = logged_in(alice)
    assert re.search(
        r'<details class="card guidelines" id="guidelines" open>',
        (client.get(f"/review/q/{queue.pk}/").content.decode()),
    )
    client.post(
        f"/review/q/{queue.pk}/items/{items[0].pk}/submit",
        {"answer-better": "left", "answer-quality": "4"},
    )
    html = client.get(f"/review/q/{queue.pk}/").content.decode()
    assert '<details class="card guidelines" id="guidelines">' in html


# Anchors over the API -----------------------------------------------------------------------


def queue_body(anchors) -> dict:
    return {
        "project": "acme",
        "name": "Anchored",
        "members": ["alice"],
        "questions": [
            {"key": "quality", "type": "rating", "prompt": "Quality", "min": 1, "max": 5,
             "anchors": anchors},
        ],
    }  # fmt: skip


def test_lead_creates_a_rating_with_anchors(carol, alice):
    response = token_client(carol).post(
        "/api/v1/queues", queue_body({"1": "Unusable", " 5": "Perfect"}), format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["questions"][0]["anchors"] == {"1": "Unusable", "5": "Perfect"}
    question = Question.objects.get(queue_id=response.json()["id"])
    assert question.anchors == {"1": "Unusable", "5": "Perfect"}


@pytest.mark.parametrize(
    "anchors",
    [
        {"0": "Below the scale"},
        {"6": "Above the scale"},
        {"one": "Not a point"},
        {"1.5": "Not a whole point"},
        {"1\x00": "NUL in the key"},
        {"1": "x" * 101},
        {"1": "NUL\x00in the text"},
        {"1": ""},
        {"99999999999999999999999": "huge"},
        {"--1": "two signs"},
        {"١": "an Arabic-Indic one"},
        ["Unusable", "Perfect"],
        "Unusable",
    ],
)
def test_bad_anchors_are_a_400_naming_the_field(carol, alice, anchors):
    response = token_client(carol).post("/api/v1/queues", queue_body(anchors), format="json")
    assert response.status_code == 400, response.content
    assert "anchors" in response.json()["questions"]["0"], response.json()
    assert not Queue.objects.filter(name="Anchored").exists()


def test_anchors_belong_to_rating_questions_only(carol, alice):
    body = queue_body({"1": "x"})
    body["questions"] = [
        {"key": "v", "type": "choice", "prompt": "?", "choices": ["a", "b"], "anchors": {"1": "x"}}
    ]
    response = token_client(carol).post("/api/v1/queues", body, format="json")
    assert response.status_code == 400
    assert "anchors" in response.json()["questions"]["0"]


# Colours: text contrast and the focus ring, light and dark ---------------------------------


def custom_properties(css: str) -> tuple[dict[str, str], dict[str, str]]:
    """The :root custom properties of review.css: light, and light overridden by dark."""
    light_block = re.search(r"^:root \{(.*?)^\}", css, re.S | re.M)
    dark_block = re.search(
        r"@media \(prefers-color-scheme: dark\) \{\s*:root \{(.*?)\}\s*\}", css, re.S
    )
    assert light_block and dark_block
    pattern = re.compile(r"(--[\w-]+):\s*(#[0-9a-fA-F]{3,6})\s*;")
    light = dict(pattern.findall(light_block.group(1)))
    return light, {**light, **dict(pattern.findall(dark_block.group(1)))}


def luminance(colour: str) -> float:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted([luminance(a), luminance(b)], reverse=True)
    return (high + 0.05) / (low + 0.05)


# (text, background) pairs the pages draw.
TEXT_PAIRS = [
    ("--ink", "--bg"), ("--ink", "--card"), ("--muted", "--bg"), ("--muted", "--card"),
    ("--accent", "--bg"), ("--accent", "--card"), ("--accent-ink", "--accent"),
    ("--error", "--card"), ("--error", "--bg"), ("--del-ink", "--del-bg"),
    ("--ins-ink", "--ins-bg"), ("--header-ink", "--header-bg"), ("--ink", "--field-bg"),
    ("--info-ink", "--info-bg"), ("--warn-ink", "--warn-bg"), ("--ink", "--claim-bg"),
    ("--ink", "--warn-bg"),
]  # fmt: skip


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_text_contrast_is_aa_in_light_and_dark(mode):
    light, dark = custom_properties(CSS.read_text())
    colours = light if mode == "light" else dark
    for ink, ground in TEXT_PAIRS:
        ratio = contrast(colours[ink], colours[ground])
        assert ratio >= 4.5, f"{mode}: {ink} on {ground} is {ratio:.2f}:1"


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_focus_ring_is_three_to_one_on_every_ground(mode):
    light, dark = custom_properties(CSS.read_text())
    colours = light if mode == "light" else dark
    assert ":focus-visible { outline: 3px solid var(--focus);" in CSS.read_text()
    for ground in ("--bg", "--card", "--header-bg", "--field-bg"):
        ratio = contrast(colours["--focus"], colours[ground])
        assert ratio >= 3, f"{mode}: focus on {ground} is {ratio:.2f}:1"


def test_answers_post_still_work_with_anchored_scales(queue, alice):
    """The anchors are words on the page only: the answer is still the number."""
    Question.objects.filter(queue=queue, key="quality").update(anchors=QUALITY_ANCHORS)
    item = make_items(queue, 1)[0]
    response = logged_in(alice).post(
        f"/review/q/{queue.pk}/items/{item.pk}/submit",
        {"answer-better": GOOD["better"], "answer-quality": str(GOOD["quality"])},
    )
    assert response.status_code == 302
    assert item.annotations.get().answers == GOOD
