"""Shared set-up of the browser tests: Debian's Chromium driven by Playwright.

Loaded as a plugin by tests/conftest.py, so the `browser` fixture is there for every test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an asyncio event loop in this thread, so Django refuses
    # ORM calls made here (SynchronousOnlyOperation) although they never run inside that
    # loop. Allowed for browser tests only; the live server answers in its own thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        policy_errors = _watch_policy_errors(browser)
        yield browser
        browser.close()
        # ORM calls made while Playwright's loop runs get a connection of their own (Django
        # keeps connections per async context), which pytest-django never sees: close it
        # while still in that context, or PostgreSQL cannot drop the test database.
        connections.close_all()
    # Chromium reports what the Content-Security-Policy or Permissions-Policy refused on the
    # console: a page that needs an inline script or style, or a foreign image, fails here.
    assert not policy_errors, policy_errors


def _watch_policy_errors(browser: Browser) -> list[str]:
    """Collect policy errors of every context and page made from `browser`.

    The list is also `browser.policy_errors`: a test that provokes one on purpose clears it.
    """
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and (
            "Content Security Policy" in message.text or "Permissions-Policy" in message.text
        ):
            errors.append(message.text)

    def new_context(**options: Any) -> BrowserContext:
        context = make_context(**options)
        context.on("console", on_console)
        return context

    make_context = browser.new_context
    browser.new_context = new_context  # type: ignore[method-assign]
    browser.new_page = lambda **options: new_context(**options).new_page()  # type: ignore[method-assign]
    browser.policy_errors = errors  # type: ignore[attr-defined]
    return errors


def logged_in_page(
    browser: Browser,
    base_url: str,
    username: str,
    path: str = "/",
    **context_options: Any,
) -> Page:
    """A new page (1280x900 unless `context_options` say otherwise, 10 s timeouts) that
    opened `path`, was sent to the login form, and logged in as `username` with the test
    password `pw-<username>` (tests/conftest.py's users). The form then sends the user on to
    `path` ("/" lands each role where its work is)."""
    options = {"viewport": {"width": 1280, "height": 900}, **context_options}
    context = browser.new_context(**options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{base_url}{path}")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"pw-{username}")
    page.get_by_role("button", name="Log in").click()
    return page
