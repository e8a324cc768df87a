"""History and undo in a real browser (headless Chromium): going back with Backspace,
changing an answer and seeing agreement follow, undoing a skip, skipping with a reason and
flagging an item."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from review.claims import annotation_submit
from review.models import Annotation, Assignment, Item, ItemFlag
from tests.browser import ARTIFACTS, logged_in_page
from tests.review.conftest import make_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def heading(page: Page, item: Item) -> None:
    expect(page.locator("#item-heading")).to_have_text(f"Item {item.pk}")


def keys_ready(page: Page) -> None:
    """The page's script is running (it marks the question number keys act on): keys
    pressed before it loads would be lost."""
    expect(page.locator("fieldset.current")).to_have_count(1)


def test_go_back_change_an_answer_and_agreement_follows(
    live_server, browser, queue, alice, bob, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # recomputations run as answers are committed
    first, second = make_items(queue, 2)
    annotation_submit(item=first, user=bob, answers={"better": "tie", "quality": 2})
    page = logged_in_page(browser, live_server.url, "alice", f"/review/q/{queue.pk}/")

    # Answer both: "both bad" on the first (bob said "tie": disputed), "left" on the second.
    heading(page, first)
    keys_ready(page)
    expect(page.get_by_role("link", name=re.compile("^Previous"))).to_have_count(0)
    for key in ("4", "2", "Enter"):
        page.keyboard.press(key)
    expect(page.locator(".messages")).to_contain_text(f"Saved your answers to item {first.pk}.")
    heading(page, second)
    for key in ("1", "3", "Enter"):
        page.keyboard.press(key)
    expect(page.get_by_role("heading", name="Queue done")).to_be_visible()
    first.refresh_from_db()
    assert (first.agreement_state, first.agreement) == ("disputed", 0.5)

    # Backspace goes back to the answer given last, and again to the one before it.
    page.keyboard.press("Backspace")
    heading(page, second)
    expect(page).to_have_url(re.compile(rf"/items/{second.pk}/answers$"))
    keys_ready(page)
    page.keyboard.press("Backspace")
    heading(page, first)
    keys_ready(page)
    page.screenshot(path=ARTIFACTS / "work-page-change.png", full_page=True)
    expect(page.locator("#q-better-4")).to_be_checked()  # my answer, filled in
    expect(page.locator("#q-quality-2")).to_be_checked()

    # Change it with the keyboard: all answered, so 3 picks the first question's "tie";
    # Enter saves.
    page.keyboard.press("3")
    expect(page.locator("#q-better-3")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text(f"Changed your answers to item {first.pk}.")
    mine = Annotation.objects.get(item=first, user=alice)
    assert mine.answers == {"better": "tie", "quality": 2} and mine.updated_at is not None
    first.refresh_from_db()
    assert (first.agreement_state, first.agreement) == ("agreed", 1.0)  # re-gated

    # My history: each answer in the words I saw, the change noted.
    page.get_by_role("link", name="My history").click()
    expect(page.get_by_role("heading", name=f"My history in {queue.name}")).to_be_visible()
    expect(page.locator(f"#answer-{second.pk}")).to_contain_text("Left")
    row = page.locator(f"#answer-{first.pk}")
    expect(row).to_contain_text("tie")
    expect(row).to_contain_text("changed")
    page.screenshot(path=ARTIFACTS / "history-page.png", full_page=True)

    # Agreed with too few items to judge the queue: excluded, a final verdict. Reopened from
    # the history, the answers are shown but can no longer change.
    assert first.decision == "excluded"
    expect(row).to_contain_text("No: verdict final")
    row.get_by_role("link", name=f"Reopen item {first.pk}").click()
    heading(page, first)
    expect(page.locator(".changing-note")).to_contain_text("verdict is final")
    expect(page.get_by_role("button", name=re.compile("^Save changes"))).to_have_count(0)
    expect(page.locator("#q-better-3")).to_be_disabled()
    page.context.close()


def test_skip_with_a_reason_undo_it_and_flag_an_item(live_server, browser, queue, alice):
    first, second = make_items(queue, 2)
    page = logged_in_page(browser, live_server.url, "alice", f"/review/q/{queue.pk}/")
    heading(page, first)

    # Flag it: a reason is asked for, then stored for the leads.
    page.get_by_text("Flag this item").click()
    page.get_by_label("What is wrong with this item?").fill("The prompt is cut off.")
    page.screenshot(path=ARTIFACTS / "work-page-flag.png", full_page=True, caret="initial")
    page.get_by_role("button", name="Flag item").click()
    expect(page.locator(".messages")).to_contain_text(
        f"Flagged item {first.pk} for the queue's leads."
    )
    heading(page, first)  # still the item to answer
    flag = ItemFlag.objects.get()
    assert (flag.item_id, flag.user, flag.reason) == (first.pk, alice, "The prompt is cut off.")

    # Skip it with a reason (Enter in the reason's box skips).
    page.get_by_text("Skip with a reason").click()
    page.get_by_label("Why skip?").fill("Not my language")
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text(f"Skipped item {first.pk}.")
    heading(page, second)
    skipped = Assignment.objects.get(item=first, user=alice)
    assert (skipped.status, skipped.skip_reason) == ("skipped", "Not my language")

    # Undo the skip from the history: the item is mine to answer again, at once.
    page.get_by_role("link", name="My history").click()
    expect(page.locator(f"#skip-{first.pk}")).to_contain_text("Not my language")
    page.get_by_role("button", name=f"Undo skip of item {first.pk}").click()
    expect(page.locator(".messages")).to_contain_text(
        f"Undid your skip: item {first.pk} is yours to answer."
    )
    heading(page, first)
    keys_ready(page)
    mine = {a.item_id: a.status for a in Assignment.objects.filter(user=alice)}
    assert mine == {first.pk: "claimed"}  # the second item went back to the queue
    for key in ("1", "4", "Enter"):
        page.keyboard.press(key)
    expect(page.locator(".messages")).to_contain_text(f"Saved your answers to item {first.pk}.")
    heading(page, second)
    page.context.close()
