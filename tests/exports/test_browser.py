"""The export page in a real browser: headless Chromium driven by Playwright.

Run with `pytest -m browser`; needs /usr/bin/chromium (Debian's `chromium` package).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from exports import tasks
from exports.models import ExportJob

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _allow_orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an asyncio event loop in this thread, so Django refuses
    # ORM calls made here (SynchronousOnlyOperation) although they never run inside that
    # loop. Allowed for these tests only; the live server answers in its own thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """The broker, with no worker behind it: jobs wait here until the test builds them as
    the worker would (without this, in-process Celery would build them during the POST)."""
    queue: list[int] = []
    monkeypatch.setattr(tasks.build_export, "delay", queue.append)
    return queue


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
        # ORM calls made while Playwright's loop runs get a connection of their own (Django
        # keeps connections per async context), which pytest-django never sees: close it
        # while still in that context, or PostgreSQL cannot drop the test database.
        connections.close_all()


def test_ml_engineer_starts_an_export_watches_it_finish_and_downloads_it(
    live_server, browser, world, mel, enqueued
):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(10_000)
    page = context.new_page()

    # Log in through the form; it sends us on to the export page.
    page.goto(f"{live_server.url}/exports/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/exports/$"))
    page.get_by_label("Username").fill("mel")
    page.get_by_label("Password").fill("pw-mel")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="New export from Acme Chat")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Exports")).to_have_attribute("aria-current", "page")
    expect(page.get_by_text("No exports yet.")).to_be_visible()

    # Filters that contradict each other are refused next to the field, input kept.
    page.get_by_label("Since").fill("2026-12-01")
    page.get_by_label("Until").fill("2026-11-01")
    page.get_by_role("button", name="Start export").click()
    expect(page.locator("#id_since_error")).to_have_text("Must be before until.")
    expect(page.get_by_label("Since")).to_have_value("2026-12-01")
    expect(page.get_by_label("Since")).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=ARTIFACTS / "export-form-errors.png", full_page=True)
    assert not ExportJob.objects.exists()

    # DPO in JSON Lines, no filters.
    page.get_by_label("Since").fill("")
    page.get_by_label("Until").fill("")
    page.get_by_label("DPO (prompt, chosen, rejected)").check()
    page.get_by_label("JSON Lines").check()
    page.get_by_role("button", name="Start export").click()

    # The job page: queued, and polling its status while no worker has taken it.
    expect(page).to_have_url(re.compile(r"/exports/\d+/$"))
    job = ExportJob.objects.get()
    assert page.url.endswith(f"/exports/{job.pk}/")
    assert (job.format, job.file_format, job.created_by) == ("dpo", "jsonl", mel)
    assert enqueued == [job.pk]
    status = page.locator("#job-status")
    expect(status).to_have_text("queued")
    expect(page.locator("#job")).to_have_attribute("hx-trigger", "every 1s")
    train_link = page.get_by_role("link", name="train.jsonl", exact=True)
    expect(train_link).to_have_count(0)

    # The worker builds it; the page, polling by itself, shows the result.
    assert tasks.build_export(enqueued.pop()) == "done"
    expect(status).to_have_text("done")
    expect(train_link).to_be_visible()
    expect(page.locator("#job")).not_to_have_attribute("hx-trigger", re.compile(".*"))
    expect(page.get_by_role("heading", name="Rows per split")).to_be_visible()

    # The training file, downloaded through the page, has the rows the manifest counts.
    with page.expect_download() as download_info:
        train_link.click()
    download = download_info.value
    assert download.suggested_filename == f"acme-dpo-{job.pk}-train.jsonl"
    lines = Path(download.path()).read_text().splitlines()
    job.refresh_from_db()
    assert len(lines) == job.manifest["rows"]["train"] == 3
    assert all(set(json.loads(line)) >= {"prompt", "chosen", "rejected"} for line in lines)
    page.screenshot(path=ARTIFACTS / "export-page.png", full_page=True)

    # Back on the list, the finished export is there with its download link.
    nav.get_by_role("link", name="Exports").click()
    expect(page.locator(".jobs .status-done")).to_have_text("done")
    page.screenshot(path=ARTIFACTS / "export-list.png", full_page=True)
    context.close()
