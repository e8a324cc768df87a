"""The work page on a phone and in dark mode, in a real browser (headless Chromium).

Run with `pytest -m browser`; needs /usr/bin/chromium (Debian's `chromium` package).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from review.models import Annotation, Queue
from review.services import items_add, project_queues_ensure
from tests.browser import ARTIFACTS, logged_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}

LONG_ANSWER = "\n\n".join(
    [
        "To add someone, open **Settings -> Members** and choose *Invite*.",
        *[f"{n}. Step {n}: a paragraph of explanation that wraps. " * 3 for n in range(1, 9)],
        "```python\nclient.members.invite(email='a@example.org')  # keeps   spacing\n```",
        "That is all.",
    ]
)  # fmt: skip


@pytest.fixture
def low_confidence_queue(project, alice) -> Queue:
    """The default low-confidence queue (verdict, a 1-5 quality with anchors, a note), with
    one item long enough to fill several phone screens."""
    queue = project_queues_ensure(project=project)[Queue.Reason.LOW_CONFIDENCE]
    queue.members.add(alice)
    long_prompt = [
        {"role": "system", "content": "You are a helpful assistant for an admin console."},
        {"role": "user", "content": "How do I add people to my workspace? " * 6},
    ]
    items_add(
        queue=queue,
        items=[
            {"content": {"prompt": long_prompt, "responses": [LONG_ANSWER, LONG_ANSWER[:400]]}},
            {"content": {"prompt": "Second?", "responses": ["Yes."]}},
        ],
    )
    return queue


def within_first_screen(page: Page, selector: str) -> None:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not rendered"
    viewport = page.viewport_size
    assert viewport is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (selector, box)
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (selector, box)


def test_phone_shows_the_answer_controls_in_the_first_screen(
    live_server, browser, low_confidence_queue, alice
):
    queue = low_confidence_queue
    page = logged_in_page(browser, live_server.url, "alice", f"/review/q/{queue.pk}/", **PHONE)
    expect(page.locator("#item-heading")).to_have_text(re.compile(r"^Item \d+$"))
    # The item is long: the form would start several screens down without the sticky bar.
    assert page.evaluate("document.documentElement.scrollHeight") > 2 * 844
    assert page.evaluate("matchMedia('(hover: none) and (pointer: coarse)').matches")

    # caret="initial": hiding the caret would leave style attributes that htmx then copies.
    page.screenshot(path=ARTIFACTS / "work-page-phone-first-screen.png", caret="initial")
    first_option = "#answer-form input[type=radio]"
    submit = "#answer-form button.primary"
    within_first_screen(page, f"{first_option} >> xpath=..")  # its label, the tap target
    within_first_screen(page, submit)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    # Touch screens get no keyboard hints: every key badge is hidden.
    assert page.locator("kbd").count() > 0
    assert page.evaluate(
        "Array.from(document.querySelectorAll('kbd')).every(k => k.getClientRects().length === 0)"
    )
    # The scale's words are on the rating.
    expect(page.get_by_role("radio", name="1 Unusable")).to_be_attached()
    expect(page.get_by_role("radio", name="5 Perfect")).to_be_attached()

    # Halfway down the item, the controls are still on screen and answer by tapping.
    page.mouse.wheel(0, 1500)
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight / 2)")
    within_first_screen(page, submit)
    page.get_by_text("yes", exact=True).tap()
    page.locator("label[for=q-quality-4]").tap()
    expect(page.locator("#q-quality-4")).to_be_checked()
    item_id = int(page.locator("#item-heading").inner_text().split()[1])
    page.locator(submit).tap()
    expect(page.locator(".messages")).to_contain_text(f"Saved your answers to item {item_id}.")
    answers = Annotation.objects.get(user=alice, item_id=item_id).answers
    assert answers == {"verdict": "yes", "quality": 4}
    page.context.close()


def rgb(css_colour: str) -> tuple[float, float, float]:
    numbers = re.findall(r"[\d.]+", css_colour)
    assert len(numbers) >= 3, css_colour
    return float(numbers[0]), float(numbers[1]), float(numbers[2])


def luminance(colour: tuple[float, float, float]) -> float:
    linear = [
        c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
        for c in (v / 255 for v in colour)
    ]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted([luminance(rgb(a)), luminance(rgb(b))], reverse=True)
    return (high + 0.05) / (low + 0.05)


STYLE_OF = "([selector, property]) => getComputedStyle(document.querySelector(selector))[property]"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_colour_scheme_follows_the_system_with_readable_text_and_focus_ring(
    live_server, browser, low_confidence_queue, alice, scheme
):
    queue = low_confidence_queue
    page = logged_in_page(browser, live_server.url, "alice", "/review/")
    page.emulate_media(color_scheme=scheme)
    page.goto(f"{live_server.url}/review/q/{queue.pk}/")
    expect(page.locator("#item-heading")).to_have_text(re.compile(r"^Item \d+$"))

    background = page.evaluate(STYLE_OF, ["body", "backgroundColor"])
    text = page.evaluate(STYLE_OF, ["body", "color"])
    card = page.evaluate(STYLE_OF, [".item", "backgroundColor"])
    if scheme == "dark":
        assert luminance(rgb(background)) < 0.03 and luminance(rgb(text)) > 0.7, (background, text)
    else:
        assert luminance(rgb(background)) > 0.85 and luminance(rgb(text)) < 0.03
    for ground in (background, card):
        assert contrast(text, ground) >= 4.5
    muted = page.evaluate(STYLE_OF, [".role", "color"])
    assert contrast(muted, card) >= 4.5, (muted, card)
    rendered = page.locator(".response .md strong").first
    expect(rendered).to_have_text("Settings -> Members")  # Markdown, not "**...**"
    assert contrast(page.evaluate(STYLE_OF, [".md pre", "color"]), card) >= 4.5

    # Keyboard focus: the ring is the focus colour, >= 3:1 against the page and the cards.
    page.locator("#q-verdict-1").focus()
    page.keyboard.press("ArrowDown")  # keyboard-moved focus: :focus-visible applies
    focused = page.evaluate("document.activeElement.id")
    assert focused.startswith("q-verdict-")
    ring = page.evaluate("getComputedStyle(document.activeElement).outlineColor")
    style = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert style == "solid", style
    for ground in (background, card):
        assert contrast(ring, ground) >= 3, (scheme, ring, ground)
    header = page.evaluate(STYLE_OF, [".site-header", "backgroundColor"])
    assert contrast(ring, header) >= 3, (scheme, ring, header)
    page.screenshot(path=ARTIFACTS / f"work-page-{scheme}.png", full_page=True)

    # The other pages share the scheme: my queues.
    page.goto(f"{live_server.url}/review/")
    assert page.evaluate(STYLE_OF, ["body", "backgroundColor"]) == background
    page.context.close()


# Every visible text on the page against the first opaque background behind it: 4.5:1, or
# 3:1 for large text (WCAG 1.4.3). Charts are drawn on a light panel in both schemes.
LOW_CONTRAST_TEXTS = """() => {
  const parse = (c) => {
    const m = (c.match(/[\\d.]+/g) || []).map(Number);
    return { r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1 };
  };
  const channel = (v) => {
    v /= 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const ground = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.a > 0.5) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const bad = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || seen.has(el) || el.closest("svg")) continue;
    seen.add(el);
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (rect.width <= 1 || rect.height <= 1 || style.visibility === "hidden") continue;
    if (el.closest("[disabled]")) continue;  // disabled controls are exempt
    const a = lum(parse(style.color)), b = lum(ground(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), weight = parseInt(style.fontWeight, 10);
    const large = size >= 24 || (size >= 18.66 && weight >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const text = node.textContent.trim().slice(0, 30);
      bad.push(`${el.tagName}.${el.className} "${text}" ${ratio.toFixed(2)}`);
    }
  }
  return bad;
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_on_the_review_pages_is_readable_in_both_schemes(
    live_server, browser, queue, alice, bob, carol, scheme
):
    from review.claims import annotation_submit
    from review.gate import queue_agreement_recompute
    from tests.review.conftest import make_items

    items = make_items(queue, 3)
    annotation_submit(item=items[0], user=alice, answers={"better": "left", "quality": 4})
    annotation_submit(item=items[0], user=bob, answers={"better": "right", "quality": 2})
    annotation_submit(item=items[1], user=alice, answers={"better": "left", "quality": 4})
    annotation_submit(item=items[1], user=bob, answers={"better": "left", "quality": 4})
    queue_agreement_recompute(queue=queue)
    page = logged_in_page(browser, live_server.url, "carol", "/review/", color_scheme=scheme)
    paths = [
        "/review/",
        "/review/lead/",
        f"/review/q/{queue.pk}/",
        f"/review/q/{queue.pk}/overview",
        f"/review/q/{queue.pk}/agreement",
        f"/review/q/{queue.pk}/disputed",
        f"/review/q/{queue.pk}/items",
        f"/review/q/{queue.pk}/items/{items[0].pk}",
        f"/review/q/{queue.pk}/flags",
    ]
    for path in paths:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        background = luminance(rgb(page.evaluate(STYLE_OF, ["body", "backgroundColor"])))
        assert (background < 0.03) if scheme == "dark" else (background > 0.85), path
        assert page.evaluate(LOW_CONTRAST_TEXTS) == [], (scheme, path)
    page.screenshot(path=ARTIFACTS / f"lead-flags-{scheme}.png", full_page=True)
    page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_login_and_export_pages_follow_the_scheme_readably(live_server, browser, mel, scheme):
    context = browser.new_context(color_scheme=scheme)
    login = context.new_page()
    login.goto(f"{live_server.url}/accounts/login/")
    assert login.evaluate(LOW_CONTRAST_TEXTS) == []
    context.close()
    page = logged_in_page(browser, live_server.url, "mel", "/exports/", color_scheme=scheme)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    background = luminance(rgb(page.evaluate(STYLE_OF, ["body", "backgroundColor"])))
    assert (background < 0.03) if scheme == "dark" else (background > 0.85)
    assert page.evaluate(LOW_CONTRAST_TEXTS) == [], scheme
    date_input = page.locator("input[type=date]").first  # styled by exports.css
    colour = date_input.evaluate("e => getComputedStyle(e).color")
    ground = date_input.evaluate("e => getComputedStyle(e).backgroundColor")
    assert contrast(colour, ground) >= 4.5
    assert (luminance(rgb(ground)) < 0.03) if scheme == "dark" else (luminance(rgb(ground)) > 0.9)
    page.context.close()
