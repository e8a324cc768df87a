"""The work page in a real browser: headless Chromium driven by Playwright.

Run with `pytest -m browser`; needs /usr/bin/chromium (Debian's `chromium` package).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from review.models import Annotation, Assignment
from tests.browser import ARTIFACTS, logged_in_page
from tests.review.conftest import make_items
from tests.review.test_views import edit_label_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def progress(page: Page):
    return page.locator("#progress")


def current_item_id(page: Page) -> int:
    """The item shown, once the page's keyboard shortcuts listen: the heading is there while
    the page still parses, before review.js (deferred) has run, and a key pressed then is
    lost (1 run in 6 of the guidelines test pressed G too soon)."""
    heading = page.locator("#item-heading")
    expect(heading).to_have_text(re.compile(r"^Item \d+$"))
    page.wait_for_load_state("domcontentloaded")  # deferred scripts run before it
    return int(heading.inner_text().split()[1])


def test_annotator_works_through_a_queue_with_the_keyboard_alone(
    live_server, browser, queue, alice, project
):
    make_items(queue, 4)
    diff_item = edit_label_item(queue, project, priority=-1)  # comes last
    ARTIFACTS.mkdir(exist_ok=True)
    # Log in through the form; the login page sends us on to "My queues".
    page = logged_in_page(browser, live_server.url, "alice", "/review/")
    expect(page.get_by_role("heading", name="My queues")).to_be_visible()
    expect(page.locator(".queue")).to_contain_text("0 of 5 items complete · you: 0")
    page.get_by_role("link", name="Start Edits to check").click()

    # Three items answered with number keys and Enter: "1" picks the first option of the
    # first unanswered question (better: left), "4" then rates the next one (quality: 4).
    expect(progress(page)).to_have_text("0 of 5 complete · you: 0")
    answered = []
    for done in range(1, 4):
        item_id = current_item_id(page)
        expect(page.locator("fieldset.current legend")).to_contain_text("Which answer is better?")
        page.keyboard.press("1")
        expect(page.get_by_label("left")).to_be_checked()
        expect(page.locator("fieldset.current legend")).to_contain_text("Quality")
        page.keyboard.press("4")
        expect(page.locator("#q-quality-4")).to_be_checked()
        page.keyboard.press("Enter")
        expect(progress(page)).to_have_text(f"0 of 5 complete · you: {done}")
        expect(page.locator(".messages")).to_contain_text(f"Saved your answers to item {item_id}.")
        expect(page.locator("#item-heading")).not_to_have_text(f"Item {item_id}")
        answered.append(item_id)

    # S skips the item on screen.
    skipped = current_item_id(page)
    page.keyboard.press("s")
    expect(page.locator(".messages")).to_contain_text(f"Skipped item {skipped}.")
    expect(page.locator("#item-heading")).not_to_have_text(f"Item {skipped}")
    expect(progress(page)).to_have_text("0 of 5 complete · you: 3")
    assert current_item_id(page) == diff_item.pk
    expect(page.locator(".diff del")).to_have_text(["4% ", "the quarter, "])
    expect(page.locator(".diff ins")).to_have_text(["5% ", "Q3, "])

    # ? shows the shortcuts, and again hides them.
    help_panel = page.locator("#shortcuts")
    expect(help_panel).to_be_hidden()
    page.keyboard.press("?")
    expect(help_panel).to_be_visible()
    expect(help_panel).to_contain_text("Skip this item")
    expect(page.locator("#help-toggle")).to_have_attribute("aria-expanded", "true")
    page.screenshot(path=ARTIFACTS / "work-page.png", full_page=True)
    page.keyboard.press("?")
    expect(help_panel).to_be_hidden()

    # The database agrees with the page.
    mine = Annotation.objects.filter(user=alice).order_by("created_at")
    assert [a.item_id for a in mine] == answered
    assert all(a.answers == {"better": "left", "quality": 4} for a in mine)
    assert all(a.seconds_spent is not None and a.seconds_spent >= 0 for a in mine)
    assert Assignment.objects.get(user=alice, item_id=skipped).status == "skipped"

    # On a phone the same page fits the screen: nothing scrolls sideways.
    phone = browser.new_context(
        viewport={"width": 375, "height": 812},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        storage_state=page.context.storage_state(),
    )
    phone_page = phone.new_page()
    phone_page.goto(f"{live_server.url}/review/q/{queue.pk}/")
    expect(phone_page.locator("#progress")).to_have_text("0 of 5 complete · you: 3")
    current_item_id(phone_page)
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 375
    phone_page.screenshot(path=ARTIFACTS / "work-page-phone.png", full_page=True)
    phone.close()
    page.context.close()


def test_guidelines_open_with_g_and_links_never_run_script(live_server, browser, queue, alice):
    queue.guidelines = "Be **fair**. [Bad](javascript:alert(1)) [Guide](https://example.com)"
    queue.save(update_fields=["guidelines"])
    make_items(queue, 1)
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/?next=/review/q/{queue.pk}/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("pw-alice")
    page.keyboard.press("Enter")
    current_item_id(page)

    guidelines = page.locator("#guidelines")
    expect(guidelines).to_have_attribute("open", "")  # open until the first answer
    page.keyboard.press("g")
    expect(guidelines).not_to_have_attribute("open", "")
    page.keyboard.press("g")
    expect(guidelines).to_have_attribute("open", "")
    expect(guidelines.locator("strong")).to_have_text("fair")
    expect(guidelines.get_by_text("Bad")).not_to_have_attribute("href", re.compile("."))
    expect(guidelines.get_by_role("link", name="Guide")).to_have_attribute(
        "href", "https://example.com"
    )
    context.close()
