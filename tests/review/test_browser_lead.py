"""The lead's flags and item filters in a real browser: headless Chromium driven by
Playwright (needs /usr/bin/chromium, Debian's `chromium` package)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from review.claims import annotation_submit, item_skip
from review.models import Item, ItemFlag
from review.services import items_add
from tests.browser import ARTIFACTS, logged_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def add(queue, prompt: str, responses: list[str]) -> Item:
    (item_id,) = items_add(
        queue=queue, items=[{"content": {"prompt": prompt, "responses": responses}}]
    )
    return Item.objects.get(pk=item_id)


def test_lead_lists_flags_and_skips_and_resolves_a_flag_with_a_note(
    live_server, browser, queue, alice, bob, carol
):
    cut = add(queue, "Summarise the report", ["The report", "A report"])
    other = add(queue, "Translate this", ["Ceci", "Cela"])
    ItemFlag.objects.create(item=cut, queue=queue, user=alice, reason="The prompt is cut off.")
    ItemFlag.objects.create(item=other, queue=queue, user=bob, reason="<b>Not</b> English")
    item_skip(item=other, user=alice, reason="I do not read French")

    page = logged_in_page(browser, live_server.url, "carol", "/review/lead/")
    page.get_by_role("link", name=re.compile(r"2 open flags")).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Open flags"))).to_contain_text("(2)")
    expect(page.locator(".flag-reason").first).to_contain_text("<b>Not</b> English")  # as text
    expect(page.get_by_role("table")).to_contain_text("I do not read French")

    page.get_by_label("Note").last.fill("Asked the product team for the full prompt.")
    page.get_by_role("button", name=f"Resolve the flag on item {cut.pk}").click()
    expect(page.locator(".messages")).to_contain_text(f"The flag on item {cut.pk} is resolved.")
    expect(page.get_by_role("heading", name=re.compile(r"^Open flags"))).to_contain_text("(1)")
    flag = ItemFlag.objects.get(item=cut)
    assert flag.resolved_by == carol
    assert flag.resolution == "Asked the product team for the full prompt."

    # The item's own page keeps the record: who flagged, who resolved, with the note.
    page.get_by_role("link", name=f"Item {other.pk}").click()
    expect(page.get_by_role("heading", name=f"Item {other.pk}", exact=True)).to_be_visible()
    expect(page.locator(".skip-list")).to_contain_text("I do not read French")
    page.screenshot(path=str(ARTIFACTS / "lead-flags.png"), full_page=True)


def test_lead_searches_and_filters_items_and_the_url_keeps_the_filters(
    live_server, browser, queue, alice, bob, carol
):
    reset = add(queue, "How do I reset my password?", ["Settings", "Ask admin"])
    billing = add(queue, "Where is my invoice?", ["Billing", "Email"])
    reset_too = add(queue, "Reset the router", ["Unplug it", "Call us"])
    for item in (reset, billing):
        annotation_submit(item=item, user=alice, answers={"better": "left", "quality": 4})
    annotation_submit(item=reset_too, user=bob, answers={"better": "left", "quality": 4})
    Item.objects.filter(pk=billing.pk).update(
        agreement_state="agreed",
        decision="excluded",
        decision_reason="queue alpha below 0.667: better alpha 0.2",
    )
    ItemFlag.objects.create(item=reset_too, queue=queue, user=bob, reason="Unclear")

    page = logged_in_page(browser, live_server.url, "carol", f"/review/q/{queue.pk}/items")
    rows = page.locator("table.item-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("td.verdict").nth(1)).to_contain_text(
        "The queue's agreement (alpha) is below its minimum of 0.667"
    )

    page.get_by_label("Text").fill("reset")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]q=reset(&|$)"))
    expect(rows).to_have_count(2)

    page.get_by_label("Answered by").fill("alice")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("How do I reset my password?")
    shared = page.url
    assert "annotator=alice" in shared

    # The URL is the filtered list: opened afresh, it shows the same.
    page.goto(shared)
    expect(rows).to_have_count(1)
    expect(page.get_by_label("Text")).to_have_value("reset")

    page.get_by_role("link", name="Clear the filters").click()
    page.get_by_label("Flags").select_option("open")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Reset the router")
    expect(rows.first).to_contain_text("flagged")

    # A bad value is named beside its field, and nothing is listed.
    page.get_by_role("link", name="Clear the filters").click()
    page.get_by_label("Answered by").fill("nobody")
    page.get_by_role("button", name="Filter").click()
    field = page.get_by_label("Answered by")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_annotator-error")).to_contain_text("No annotator of this queue")
    expect(rows).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "lead-item-filters.png"), full_page=True)


def test_lead_releases_an_item_from_the_hold_out_and_sees_the_whole_item_to_mark_gold(
    live_server, browser, queue, carol
):
    long_prompt = "Explain in detail " + "why the sky is blue, " * 8 + "THE END"
    item = add(queue, long_prompt, ["Rayleigh", "Magic"])
    Item.objects.filter(pk=item.pk).update(held_out=True)
    page = logged_in_page(browser, live_server.url, "carol", f"/review/q/{queue.pk}/items")
    page.get_by_text(f"Mark as gold item {item.pk}").click()
    expect(page.locator(".gold-item")).to_contain_text("THE END")
    expect(page.locator(".gold-item")).to_contain_text("Rayleigh")

    page.get_by_role("link", name=re.compile(rf"item {item.pk}$")).click()
    page.get_by_role("button", name="Release from hold-out").click()
    expect(page.locator(".messages")).to_contain_text(
        f"Item {item.pk} is released from the hold-out"
    )
    expect(page.get_by_text("Not held out.")).to_be_visible()
    item.refresh_from_db()
    assert not item.held_out
