"""The team page and each role's landing page in a real browser (headless Chromium).

Run with `pytest -m browser`; needs /usr/bin/chromium (Debian's `chromium` package).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from review.models import Queue
from tenancy.models import Membership
from tests.browser import ARTIFACTS, logged_in_page
from tests.tenancy.conftest import roles_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lead_adds_a_member_and_sets_their_role(live_server, browser, project, carol, dave):
    Queue.objects.create(project=project, name="Edits to check")
    page = logged_in_page(browser, live_server.url, "carol")
    expect(page.get_by_role("heading", name="Projects I lead")).to_be_visible()
    page.get_by_role("link", name="Team of Acme Chat").click()
    expect(page.get_by_role("heading", name="Team of Acme Chat")).to_be_visible()
    # A lead is not offered the admin role.
    expect(page.get_by_label("Role", exact=True).locator("option")).to_have_text(
        ["Review lead", "Annotator", "ML engineer (exports)"]
    )

    page.get_by_label("Username or email").fill("dave@example.com")
    page.get_by_label("Role", exact=True).select_option(label="ML engineer (exports)")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator(".messages")).to_have_text("Added dave as ML engineer (exports).")
    expect(page.get_by_label("Role of dave")).to_have_value("ml")

    page.get_by_label("Role of dave").select_option(label="Annotator")
    page.get_by_role("button", name="Save the role of dave").click()
    expect(page.locator(".messages")).to_have_text("dave is Annotator now.")
    expect(page.get_by_label("Role of dave")).to_have_value("annotator")
    page.screenshot(path=ARTIFACTS / "team-page.png", full_page=True)

    # A refusal is shown beside the form, naming what is wrong.
    page.get_by_label("Username or email").fill("nobody")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator(".field.invalid .error")).to_contain_text(
        "No account with the username or email nobody."
    )
    assert roles_of(project) == {"carol": Membership.Role.LEAD, "dave": Membership.Role.ANNOTATOR}


@pytest.mark.parametrize(
    ("who", "url", "heading"),
    [
        ("alice", r"/review/$", "My queues"),
        ("carol", r"/review/lead/$", "Projects I lead"),
        ("mel", r"/exports/$", "Exports"),
    ],
)
def test_each_role_lands_on_its_work_after_logging_in(
    live_server, browser, project, alice, carol, mel, who, url, heading
):
    queue = Queue.objects.create(project=project, name="Edits to check")
    queue.members.add(alice)
    page = logged_in_page(browser, live_server.url, who)
    expect(page).to_have_url(re.compile(url))
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    if who == "alice":
        expect(page.get_by_role("link", name="Start Edits to check")).to_be_visible()
    elif who == "carol":
        overview = re.compile(r"^Edits to check\W+overview$")
        expect(page.get_by_role("link", name=overview)).to_be_visible()
        expect(page.locator("#main").get_by_role("link", name="My queues")).to_be_visible()
