"""The playground in Chromium: a visitor asks, regenerates, edits, copies and ends the
session; the labels the contract promises come out of derivation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from feedback import labelling, services
from feedback.models import Event, Label
from tests.browser import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(db):
    project, _ = services.project_create(slug="demo", name="Demo assistant")
    return project


@pytest.fixture
def admin_user(django_user_model, demo):
    return django_user_model.objects.create_superuser(username="admin", password="pw-admin")


def test_visitor_session_in_the_playground_gives_the_promised_labels(
    live_server, browser, demo, admin_user, ingest_watch
):
    context = browser.new_context(viewport={"width": 1280, "height": 2000})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{live_server.url}/playground/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("pw-admin")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Playground")).to_be_visible()
    session_id = page.locator("#session-id").inner_text()
    assert re.fullmatch(r"pg_[0-9a-f]{16}", session_id)
    answers = page.locator(".answer")

    def ask(prompt: str) -> None:
        count = answers.count()
        page.get_by_label("Ask").fill(prompt)
        page.get_by_role("button", name="Ask", exact=True).click()
        expect(answers).to_have_count(count + 1)

    # Ask, regenerate, copy the second answer.
    ask("What is the <b>capital</b> of France?")
    # The prompt is shown as text, never as markup.
    expect(page.locator(".prompt").first).to_have_text("What is the <b>capital</b> of France?")
    expect(page.locator(".turns b")).to_have_count(0)
    first = answers.nth(0)
    expect(first.locator(".answer-text")).to_contain_text("Paris is the capital of France.")
    first.get_by_role("button", name="Regenerate").click()
    expect(answers).to_have_count(2)
    second = answers.nth(1)
    expect(second.locator(".answer-text")).to_contain_text("France's capital is Paris")
    expect(first).to_have_class(re.compile(r"\breplaced\b"))
    second.get_by_role("button", name="Copy").click()

    # Ask again and correct a number in the answer.
    ask("How do I brew green tea?")
    third = answers.nth(2)
    expect(third.locator(".answer-text")).to_have_text(
        "Steep green tea at 80 °C for 2 minutes. Boiling water makes it bitter."
    )
    third.get_by_role("button", name="Edit").click()
    third.get_by_label("Edit the answer").fill(
        "Steep green tea at 80 °C for 3 minutes. Boiling water makes it bitter."
    )
    third.get_by_role("button", name="Save edit").click()
    expect(third.locator(".answer-text")).to_contain_text("for 3 minutes")

    # A last question, read and left as it is; then the session ends as completed.
    ask("When did Apollo land on the Moon?")
    generation_ids = [answers.nth(i).get_attribute("data-gleaner-generation") for i in range(4)]
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
    page.get_by_role("button", name="End session: completed").click()
    expect(page.get_by_role("heading", name="Session ended")).to_be_visible()

    events = ingest_watch.poll(
        lambda: list(Event.objects.filter(session__external_id=session_id)),
        lambda events: any(e.type == "session_outcome" for e in events),
    )
    assert ingest_watch.beacons >= 1
    assert {e.type for e in events} >= {"generation", "regenerate", "copy", "edit"}
    while labelling.sessions_derive_pending():
        pass

    g1, g2, g3, g4 = generation_ids
    labels = {
        (
            label.rule,
            label.generation.external_id,
            getattr(label.other_generation, "external_id", None),
        )
        for label in Label.objects.filter(
            session__external_id=session_id, active=True
        ).select_related("generation", "other_generation")
    }
    assert ("edit_correction", g3, None) in labels
    assert any(
        rule == "regenerate_then_action" and g2 in (a, b) and g1 in (a, b) for rule, a, b in labels
    )
    assert ("copy_accept", g2, None) in labels
    assert ("session_completed", g4, None) in labels

    # The links of the ended page: the session in the API, its labels and review items.
    page.reload()
    api = page.request.get(
        live_server.url + page.locator("#api-link").get_attribute("href"),
        headers={"Accept": "application/json"},
    )
    assert api.status == 200
    body = api.json()
    assert body["session_id"] == session_id and body["outcome"] == "completed"
    assert [g["generation_id"] for g in body["generations"]] == generation_ids
    page.locator("#labels-link").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(len(labels))
    page.go_back()
    page.locator("#items-link").click()
    expect(page.locator("#result_list tbody tr").first).to_be_visible()
