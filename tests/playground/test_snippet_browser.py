"""The capture snippet in Chromium, on a bare page that loads it with a script tag
(tests/playground/urls.py), talking to a live server with a publishable key."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from feedback.models import Event
from tenancy.keys import api_key_create
from tests.playground.conftest import generation_ingest
from tests.playground.urls import ANSWER

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.playground.urls"),
]


def open_page(browser, live_server, key: str, session: str, generation: str = "g1") -> Page:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    query = urlencode({"key": key, "session": session, "generation": generation})
    page.goto(f"{live_server.url}/snippet-test?{query}")
    page.wait_for_function("() => window.Gleaner && window.Gleaner.sessionId !== null")
    return page


def events_of(session: str) -> list[Event]:
    return list(
        Event.objects.filter(session__external_id=session).order_by("timestamp", "client_id")
    )


def types_of(events: list[Event]) -> list[str]:
    return [event.type for event in events]


def test_snippet_captures_each_action_and_sends_the_rest_with_a_beacon_on_pagehide(
    live_server, browser, project, ingest_watch
):
    _, key = api_key_create(project=project, publishable=True, origins=[live_server.url])
    generation_ingest(project, session_id="s-snippet", generation_id="g1", output=ANSWER)
    page = open_page(browser, live_server, key, "s-snippet")
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    requests: list[tuple[str, str | None]] = []
    page.on("request", lambda r: requests.append((r.url, r.headers.get("authorization"))))

    # Copy a selection inside the answer (and one outside it, which is not reported).
    page.evaluate(
        """() => {
          const range = document.createRange();
          range.selectNodeContents(document.getElementById('outside'));
          getSelection().removeAllRanges(); getSelection().addRange(range);
        }"""
    )
    page.keyboard.press("Control+c")
    page.evaluate(
        """() => {
          const text = document.getElementById('text').firstChild;
          const range = document.createRange();
          const at = text.data.indexOf('Tuesday at 10');
          range.setStart(text, at); range.setEnd(text, at + 13);
          getSelection().removeAllRanges(); getSelection().addRange(range);
        }"""
    )
    page.keyboard.press("Control+c")
    page.locator("#share").click()
    page.locator("#regenerate").click()
    # An edit is reported with its final text when the field loses focus; Save then finds
    # nothing new, and a field left as it was sends nothing.
    page.locator("#edit").fill(ANSWER.replace("10:00", "11:00"))
    page.locator("#save").click()
    page.locator("#save").click()
    # Reading time: the answer leaves the view after being read.
    page.locator("#answer").evaluate("el => { el.hidden = true; }")

    events = ingest_watch.poll(lambda: events_of("s-snippet"), lambda e: len(e) >= 6)
    # One batch through fetch with the header, in the order things happened.
    assert types_of(events) == ["generation", "copy", "share", "regenerate", "edit", "view"]
    by_type = {event.type: event for event in events}
    assert by_type["copy"].payload == {"text": "Tuesday at 10"}
    assert by_type["edit"].payload == {"text": ANSWER.replace("10:00", "11:00")}
    assert by_type["view"].payload["dwell_ms"] > 0
    for event in events[1:]:
        assert event.generation_ref == "g1"
        assert event.client_id.startswith("ev_")
        assert event.user_ref == "user-1"
    assert [e.client_id for e in events[1:]] == sorted(e.client_id for e in events[1:])

    # The copy button, then the page goes away: what is queued leaves as a beacon, with
    # the outcome the page set.
    page.locator("#answer").evaluate("el => { el.hidden = false; }")
    page.locator("#copy").click()
    page.evaluate("Gleaner.end('completed', {signal: 'test_done'})")
    page.goto("about:blank")
    events = ingest_watch.poll(
        lambda: events_of("s-snippet"), lambda e: "session_outcome" in types_of(e)
    )
    copies = [event for event in events if event.type == "copy"]
    # The button copies the answer as it now reads: after the edit.
    edited = ANSWER.replace("10:00", "11:00")
    assert [c.payload for c in copies] == [{"text": "Tuesday at 10"}, {"text": edited}]
    outcome = next(event for event in events if event.type == "session_outcome")
    assert outcome.payload == {"outcome": "completed", "signal": "test_done"}
    assert outcome.generation_ref == ""
    # Batches went with the key in the header; the last one as a beacon, the key in the URL.
    assert ingest_watch.beacons == 1
    fetches = [auth for url, auth in requests if url.endswith("/api/v1/events")]
    assert fetches and fetches == [f"Bearer {key}"] * len(fetches)
    assert types_of(events).count("edit") == 1
    # Silent: only Chromium's own line about the missing favicon.
    assert [text for text in console if "Failed to load resource" not in text] == []


def test_a_key_for_another_origin_stores_nothing(live_server, browser, project):
    _, key = api_key_create(project=project, publishable=True, origins=["https://shop.example"])
    page = open_page(browser, live_server, key, "s-elsewhere")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/events")) as answer:
        page.locator("#share").click()
        page.evaluate("Gleaner.flush()")
    assert answer.value.status == 403
    assert not Event.objects.filter(session__external_id="s-elsewhere").exists()


def test_a_publishable_key_cannot_send_a_generation(live_server, browser, project):
    _, key = api_key_create(project=project, publishable=True, origins=[live_server.url])
    page = open_page(browser, live_server, key, "s-forged")
    answer = page.evaluate(
        """async (key) => {
          const response = await fetch('/api/v1/events', {
            method: 'POST',
            headers: {Authorization: `Bearer ${key}`, 'Content-Type': 'application/json'},
            body: JSON.stringify({events: [{
              id: 'forged-1', type: 'generation', timestamp: new Date().toISOString(),
              session_id: 's-forged', generation_id: 'g-forged', input: 'Hi',
              output: 'Made up by a page'}]}),
          });
          return {status: response.status, body: await response.json()};
        }""",
        key,
    )
    assert answer["status"] == 207, json.dumps(answer)
    assert answer["body"]["accepted"] == 0
    assert list(answer["body"]["errors"][0]["errors"]) == ["type"]
    assert not Event.objects.filter(session__external_id="s-forged").exists()
    expect(page.locator("#text")).to_have_text(ANSWER)  # nothing was written into the page


def test_reading_time_is_reported_while_read_and_when_the_answer_goes(
    live_server, browser, project, ingest_watch
):
    _, key = api_key_create(project=project, publishable=True, origins=[live_server.url])
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.clock.install()  # run_for() moves the page's timers and performance.now() on
    query = urlencode({"key": key, "session": "s-dwell", "generation": "g1"})
    page.goto(f"{live_server.url}/snippet-test?{query}")
    page.wait_for_function("() => window.Gleaner && window.Gleaner.sessionId !== null")

    # 17.5 s on screen: the 15 s report, sent by the batch timer 2 s later.
    page.clock.run_for(17_500)
    views = ingest_watch.poll(
        lambda: [e.payload["dwell_ms"] for e in events_of("s-dwell")], lambda d: len(d) == 1
    )
    assert 14_500 <= views[0] <= 15_000
    # The chat drops the answer: the time read since is reported at once.
    page.locator("#answer").evaluate("el => el.remove()")
    page.clock.run_for(2_500)
    views = ingest_watch.poll(
        lambda: [e.payload["dwell_ms"] for e in events_of("s-dwell")], lambda d: len(d) == 2
    )
    # 2.5 s, plus the real time the test took in between (the page's clock keeps running).
    assert 2_500 <= views[1] <= 4_500


def test_a_page_on_another_origin_loads_the_snippet_and_sends_through_cors(
    live_server, browser, project, ingest_watch
):
    gleaner = live_server.url
    shop = gleaner.replace("localhost", "127.0.0.1")
    assert shop != gleaner
    _, key = api_key_create(project=project, publishable=True, origins=[shop])
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    endpoint = f"{gleaner}/api/v1/events"
    query = urlencode(
        {
            "key": key,
            "session": "s-cors",
            "generation": "g1",
            "gleaner": gleaner,
            "endpoint": endpoint,
        }
    )
    page.goto(f"{shop}/snippet-test?{query}")
    page.wait_for_function("() => window.Gleaner && window.Gleaner.sessionId !== null")

    # A header-carrying fetch: preflighted, then answered with the origin allowed.
    with page.expect_response(lambda r: r.url == endpoint and r.request.method == "POST") as answer:
        page.locator("#share").click()
        page.evaluate("Gleaner.flush()")
    assert answer.value.status == 200
    assert answer.value.headers["access-control-allow-origin"] == shop
    # A beacon: a simple request, the key in the URL.
    page.evaluate("Gleaner.end('abandoned')")
    page.goto("about:blank")
    events = ingest_watch.poll(
        lambda: events_of("s-cors"), lambda e: "session_outcome" in types_of(e)
    )
    assert {"share", "view"} <= set(types_of(events))  # flush() reports reading time too
    assert ingest_watch.beacons == 1
