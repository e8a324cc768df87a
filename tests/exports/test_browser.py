"""The export page in a real browser: headless Chromium driven by Playwright.

Run with `pytest -m browser`; needs /usr/bin/chromium (Debian's `chromium` package).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from exports import tasks
from exports.models import ExportJob
from tests.browser import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def no_worker(monkeypatch):
    """A real broker (kombu's in-memory transport) with no worker behind it: jobs wait there
    until the test builds them as the worker would. In-process mode would instead build
    them during the POST, and there would be no progress to watch."""
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setitem(app.conf, "broker_url", "memory://localhost/")


def test_ml_engineer_starts_an_export_watches_it_finish_and_downloads_it(
    live_server, browser, world, mel, no_worker
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
    assert job.status == "queued"  # on the broker, not built during the POST
    status = page.locator("#job-status")
    expect(status).to_have_text("queued")
    expect(page.locator("#job")).to_have_attribute("hx-trigger", "every 1s")
    train_link = page.get_by_role("link", name="train.jsonl", exact=True)
    expect(train_link).to_have_count(0)

    # The worker builds it; the page, polling by itself, shows the result.
    assert tasks.build_export(job.pk) == "done"
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
