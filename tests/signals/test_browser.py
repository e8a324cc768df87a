"""The Signals page and the comparison in real Chromium: charts and tables render, the
form works from the keyboard, and a figure is read from a table."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import ARTIFACTS, logged_in_page
from tests.signals.conftest import SCRIPT


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_lead_reads_the_signals_and_compares_two_models(live_server, browser, carol, traffic):
    path = "/projects/acme/signals?from=2026-11-20&to=2026-11-21"
    page = logged_in_page(
        browser, live_server.url, "carol", path, viewport={"width": 1440, "height": 900}
    )

    expect(page.get_by_role("heading", name="Acme Chat: signals")).to_be_visible()
    table = page.get_by_role("table", name="Copies and shares per day")
    expect(table.get_by_role("row", name=re.compile(r"^2026-11-21"))).to_contain_text("83.3%")
    chart = page.get_by_role("img", name=re.compile(r"Line chart of the copy rate per day"))
    expect(chart).to_be_visible()

    # Break down by model from the keyboard: pick in the select, submit with Enter.
    page.get_by_label("Broken down by").select_option("model")
    page.get_by_role("button", name="Show").press("Enter")
    expect(page).to_have_url(re.compile(r"by=model"))
    table = page.get_by_role("table", name="Copies and shares per day, by model")
    row = table.get_by_role("row", name=re.compile(r"^2026-11-21 m-b"))
    expect(row).to_contain_text("100.0%")
    expect(page.get_by_role("checkbox", name=re.compile(r"^m-a"))).to_be_visible()
    page.locator("figure.chart").first.focus()
    expect(page.locator("figure.chart").first).to_be_focused()
    page.screenshot(path=ARTIFACTS / "signals.png", full_page=True)

    page.get_by_role("link", name="Compare", exact=True).click()
    page.get_by_label("Compare groups of").select_option("feature")
    page.get_by_label("A from").fill("2026-11-20")
    page.get_by_label("A to", exact=True).fill("2026-11-21")
    # B's period is filled in with the last two weeks up to today: set it to A's two days
    # (which days of the traffic those weeks hold depends on the date the test runs).
    page.get_by_label("B from").fill("2026-11-20")
    page.get_by_label("B to", exact=True).fill("2026-11-21")
    page.get_by_role("button", name="Compare").click()
    comparison = page.get_by_role("table", name="Signals of A and B, with B minus A")
    copy = comparison.get_by_role("row", name=re.compile(r"^Copy rate"))
    expect(copy).to_contain_text("50.0%")
    expect(copy).to_contain_text("66.7%")
    expect(copy).to_contain_text("+16.7 pp")
    expect(page.locator("#comparison-heading")).to_contain_text(f"A: {SCRIPT}")  # as text
    page.screenshot(path=ARTIFACTS / "signals-compare.png", full_page=True)
    page.context.close()
