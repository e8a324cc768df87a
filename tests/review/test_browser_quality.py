"""The agreement page in Chromium: a lead discounts a careless annotator and counts them
again, and the charts' values are reachable from the keyboard.

Run with `pytest -m browser`; needs /usr/bin/chromium (Debian's `chromium` package).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from review import gate
from tests.browser import ARTIFACTS, logged_in_page
from tests.review.test_exclusions import WEAK, make_reviewers, seeded_queue

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def reviewers(django_user_model, project):
    return make_reviewers(django_user_model)


def verdict_alpha(page: Page):
    rows = page.locator("section[aria-labelledby=alpha-heading] tbody tr")
    return rows.filter(has_text="verdict").locator("td").nth(1)


def test_a_lead_excludes_a_careless_annotator_and_counts_them_again(
    live_server,
    browser,
    project,
    reviewers,
    carol,
    settings,
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the recomputation runs after each commit
    queue = seeded_queue(project, reviewers)
    with_dave = gate.queue_agreement_recompute(queue=queue).results["questions"]["verdict"]
    page = logged_in_page(browser, live_server.url, "carol", f"/review/q/{queue.pk}/agreement")
    expect(verdict_alpha(page)).to_have_text(f"{with_dave['alpha']:.3f}")
    dave = page.locator("tr", has=page.get_by_role("rowheader", name=WEAK))
    expect(dave).to_contain_text("⚑ Flagged")
    # The alpha chart's points are in a table beside it, not only in hover titles.
    points = page.get_by_role("table", name="Alpha over time, per question: the chart's points")
    expect(points).to_be_visible()
    expect(points.locator("tbody tr", has_text="verdict").last).to_contain_text(
        f"{with_dave['alpha']:.3f}"
    )

    # Keyboard only: the disclosure opens with Enter, the reason is typed, Enter submits.
    summary = dave.locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    reason = page.get_by_label(f"Why should {WEAK}'s answers not count?")
    expect(reason).to_be_visible()
    reason.fill("Answers at random: 0.4 on the items we checked.")
    page.get_by_role("button", name=f"Exclude {WEAK}'s answers").click()

    expect(page.locator(".messages")).to_contain_text(f"{WEAK}'s answers no longer count")
    without = verdict_alpha(page)
    expect(without).not_to_have_text(f"{with_dave['alpha']:.3f}")
    assert float(without.inner_text()) >= queue.min_alpha > with_dave["alpha"]
    expect(page.locator("section[aria-labelledby=alpha-heading]")).to_contain_text("Meets it")
    dave = page.locator("tr", has=page.get_by_role("rowheader", name=WEAK)).first
    expect(dave).to_contain_text("Excluded")
    expect(page.get_by_role("table", name="Excluded annotators")).to_contain_text(
        "Answers at random: 0.4 on the items we checked."
    )
    page.screenshot(path=ARTIFACTS / "agreement-excluded.png", full_page=True)

    page.get_by_role("button", name=f"Count {WEAK}'s answers again").click()
    expect(page.locator(".messages")).to_contain_text(f"{WEAK}'s answers count again")
    expect(verdict_alpha(page)).to_have_text(f"{with_dave['alpha']:.3f}")
    expect(page.locator("section[aria-labelledby=alpha-heading]")).to_contain_text("Below it")
    expect(page.get_by_role("table", name="Excluded annotators")).to_contain_text("by carol")


def test_an_exclusion_without_a_reason_is_refused_in_words(
    live_server,
    browser,
    project,
    reviewers,
    carol,
):
    queue = seeded_queue(project, reviewers, items=6)
    gate.queue_agreement_recompute(queue=queue)
    page = logged_in_page(browser, live_server.url, "carol", f"/review/q/{queue.pk}/agreement")
    dave = page.locator("tr", has=page.get_by_role("rowheader", name=WEAK))
    dave.locator("summary").click()
    reason = page.get_by_label(f"Why should {WEAK}'s answers not count?")
    reason.fill("   ")  # passes `required`, refused by the server
    page.get_by_role("button", name=f"Exclude {WEAK}'s answers").click()
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".error").first).to_contain_text("say why")
