"""Issue 9, the review side: bad input is a 4xx naming the field, access follows project
membership, guideline images stay on this site, and a claim never reports "nothing left"
while claimable items remain."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.test import Client

from feedback.models import Membership
from review.models import Assignment
from review.templatetags.review_text import markdown_sanitised
from tests.conftest import token_client
from tests.review.conftest import GOOD, make_items

pytestmark = pytest.mark.django_db


class Tags(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# Queue access follows project membership ---------------------------------------------------


def test_removed_project_member_loses_every_queue_page_and_endpoint(queue, alice, bob):
    item = make_items(queue, 2)[0]
    api, page = token_client(alice), logged_in(alice)
    assert api.post(f"/api/v1/queues/{queue.pk}/next").status_code == 200  # before: works

    Membership.objects.filter(user=alice, project=queue.project).delete()

    assert alice in queue.members.all()  # still listed: access must not depend on it alone
    assert api.get("/api/v1/queues").json()["queues"] == []
    base = f"/api/v1/queues/{queue.pk}"
    assert api.get(base).status_code == 404
    assert api.post(f"{base}/next").status_code == 404
    assert (
        api.post(
            f"{base}/items/{item.pk}/annotations", {"answers": GOOD}, format="json"
        ).status_code
        == 404
    )
    assert api.post(f"{base}/items/{item.pk}/skip").status_code == 404
    assert page.get("/review/").content.decode().count(queue.name) == 0
    assert page.get(f"/review/q/{queue.pk}/").status_code == 404
    submit = page.post(f"/review/q/{queue.pk}/items/{item.pk}/submit", {"answer-better": "left"})
    assert submit.status_code == 404
    assert page.post(f"/review/q/{queue.pk}/items/{item.pk}/skip").status_code == 404
    assert not Assignment.objects.filter(user=alice).exclude(status="claimed").exists()
    # bob, still a member of the project, keeps his access.
    assert token_client(bob).post(f"{base}/next").status_code == 200


def test_lead_keeps_access_without_being_a_queue_member(queue, carol):
    assert carol not in queue.members.all()
    assert logged_in(carol).get(f"/review/q/{queue.pk}/").status_code == 200


# Guideline images --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "src",
    [
        "//evil.example/pixel.png",
        "https://evil.example/pixel.png",
        "http://evil.example/pixel.png",
        "/\\evil.example/pixel.png",
        "\\\\evil.example/pixel.png",
        " //evil.example/pixel.png",
        "/\t/evil.example/pixel.png",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "data:image/svg+xml,<svg onload=alert(1)>",
    ],
)
def test_guideline_images_from_other_hosts_are_not_fetched(src):
    html = str(markdown_sanitised(f'Look: <img src="{src}" alt="x"> and ![y]({src})'))
    sources = [attrs["src"] for tag, attrs in Tags(html).tags if tag == "img" and "src" in attrs]
    for source in sources:  # resolved as a browser would, from a page of this site
        url = urljoin("https://gleaner.test/review/", re.sub(r"[\t\n\r]", "", source).strip())
        assert urlsplit(url.replace("\\", "/")).netloc == "gleaner.test", source
    assert "javascript" not in html and "text/html" not in html and "svg" not in html


@pytest.mark.parametrize(
    "src", ["/static/review/example.png", "/media/a.png", "data:image/png;base64,iVBORw0KGgo="]
)
def test_guideline_images_from_this_site_or_inline_are_kept(src):
    html = str(markdown_sanitised(f"![example]({src})"))
    assert f'src="{src}"' in html


def test_guideline_links_may_still_go_elsewhere_but_not_to_data_urls():
    html = str(markdown_sanitised("[ok](https://example.org/) [bad](data:text/html,hi)"))
    assert 'href="https://example.org/"' in html
    assert "data:" not in html


def test_work_page_shows_no_foreign_guideline_image(queue, alice):
    queue.guidelines = "![pixel](//tracker.example/p.gif)"
    queue.save()
    make_items(queue, 1)
    html = logged_in(alice).get(f"/review/q/{queue.pk}/").content.decode()
    assert "tracker.example" not in html
