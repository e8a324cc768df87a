"""The export pages: start an export, follow it, download its files."""

from __future__ import annotations

import json
from datetime import datetime
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from exports import selectors, services
from exports.filters import parse_filters
from exports.models import ExportJob
from exports.tasks import build_export
from exports.writers import file_sha256
from feedback import services as feedback_services
from review.models import Queue
from tenancy.models import Membership
from tenancy.services import membership_set

pytestmark = pytest.mark.django_db

GOOD_POST = {"project": "acme", "format": "dpo", "file_format": "jsonl", "style": "standard"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def queued_job(project, user=None, **fields) -> ExportJob:
    return services.export_job_create(
        project=project,
        created_by=user,
        fmt=fields.pop("fmt", "dpo"),
        file_format=fields.pop("file_format", "jsonl"),
        filters=parse_filters(fields.pop("filters", {}), project=project),
    )


def built_job(project, user=None, **fields) -> ExportJob:
    """A job built as the worker builds it: by running the task."""
    job = queued_job(project, user, **fields)
    assert build_export(job.pk) == "done"
    job.refresh_from_db()
    return job


def streamed(response) -> bytes:
    assert response.status_code == 200 and response.streaming
    return b"".join(response.streaming_content)


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            found
            for name, found in self.tags
            if name == tag and all(found.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


# Who may do what --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/exports/"),
        ("post", "/exports/"),
        ("get", "/exports/{id}/"),
        ("get", "/exports/{id}/status"),
        ("get", "/exports/{id}/download/train"),
    ],
)
def test_anonymous_visitor_is_sent_to_login(client, project, method, path):
    job = queued_job(project)
    response = getattr(client, method)(
        path.format(id=job.pk), GOOD_POST if method == "post" else {}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert ExportJob.objects.count() == 1


def test_member_without_export_role_gets_403_everywhere(world, project, alice, carol, mel):
    job = built_job(project, mel)
    for user in (alice, carol):
        client = logged_in(user)
        assert client.get("/exports/?project=acme").status_code == 403
        assert client.post("/exports/", GOOD_POST).status_code == 403
        assert client.get(f"/exports/{job.pk}/").status_code == 403
        assert client.get(f"/exports/{job.pk}/status", HTTP_HX_REQUEST="true").status_code == 403
        assert client.get(f"/exports/{job.pk}/download/train").status_code == 403
    assert ExportJob.objects.count() == 1


def test_non_member_gets_404_everywhere(world, project, owen, mel):
    job = built_job(project, mel)
    client = logged_in(owen)
    assert client.get("/exports/?project=acme").status_code == 404
    assert client.get("/exports/?project=no-such-project").status_code == 404
    assert client.post("/exports/", GOOD_POST).status_code == 404
    assert client.post("/exports/", {**GOOD_POST, "project": ""}).status_code == 404
    assert client.get(f"/exports/{job.pk}/").status_code == 404
    assert client.get(f"/exports/{job.pk}/status").status_code == 404
    assert client.get(f"/exports/{job.pk}/download/train").status_code == 404
    assert client.get("/exports/999999/").status_code == 404
    assert ExportJob.objects.count() == 1


def test_list_shows_only_exports_of_projects_the_user_may_export_from(
    project, other_project, mel, owen, alice
):
    ours = queued_job(project, mel)
    theirs = queued_job(other_project, owen)
    mel_page = logged_in(mel).get("/exports/").content.decode()
    assert f'href="/exports/{ours.pk}/"' in mel_page
    assert f'href="/exports/{theirs.pk}/"' not in mel_page and "Globex" not in mel_page
    owen_page = logged_in(owen).get("/exports/").content.decode()
    assert f'href="/exports/{theirs.pk}/"' in owen_page
    assert f'href="/exports/{ours.pk}/"' not in owen_page and "Acme" not in owen_page

    alice_page = logged_in(alice).get("/exports/")
    assert alice_page.status_code == 200
    html = alice_page.content.decode()
    assert "You may not export from any of your projects" in html
    assert '<form method="post" action="/exports/"' not in html
    assert f'href="/exports/{ours.pk}/"' not in html


def test_start_export_needs_the_csrf_token(world, mel):
    client = Client(enforce_csrf_checks=True)
    client.force_login(mel)
    assert client.post("/exports/", GOOD_POST).status_code == 403
    assert not ExportJob.objects.exists()


@pytest.mark.parametrize("path", ["/exports/", "/exports/{id}/", "/exports/{id}/download/train"])
def test_pages_refuse_other_methods(project, mel, path):
    job = queued_job(project, mel)
    assert logged_in(mel).delete(path.format(id=job.pk)).status_code == 405


# The navigation link --------------------------------------------------------------------


@pytest.mark.parametrize("role", Membership.Role.values)
def test_exports_link_is_shown_exactly_to_roles_that_may_export(project, django_user_model, role):
    user = django_user_model.objects.create_user("dora", password="pw-dora")
    membership_set(project=project, user=user, role=role)
    html = logged_in(user).get("/review/").content.decode()
    assert ('href="/exports/"' in html) == (role in selectors.EXPORT_ROLES)


def test_exports_link_costs_one_query_however_many_projects(project, django_user_model, mel):
    client = logged_in(mel)
    with CaptureQueriesContext(connection) as one:
        html = client.get("/review/").content.decode()
    assert html.count('href="/exports/"') == 1
    for n in range(5):
        other, _ = feedback_services.project_create(slug=f"p{n}", name=f"P{n}")
        membership_set(project=other, user=mel, role="ml")
    with CaptureQueriesContext(connection) as six:
        html = client.get("/review/").content.decode()
    assert html.count('href="/exports/"') == 1
    assert len(six) == len(one)


# Starting an export ----------------------------------------------------------------------


def test_export_page_offers_formats_filters_and_the_projects_queues(world, project, mel):
    response = logged_in(mel).get("/exports/")
    html = response.content.decode()
    tags = Tags(html)
    assert response.status_code == 200
    assert "New export from Acme Chat" in html
    assert tags.find("input", type="hidden", name="project", value="acme")
    assert {t["value"] for t in tags.find("input", name="format")} == set(ExportJob.Format.values)
    assert "DPO (prompt, chosen, rejected)" in html and "OpenAI preference fine-tuning" in html
    assert {t["value"] for t in tags.find("input", name="file_format")} == {"jsonl", "parquet"}
    assert {t["value"] for t in tags.find("input", name="style")} == {"standard", "conversational"}
    assert tags.find("input", name="since", type="date")
    assert tags.find("input", name="until", type="date")
    assert tags.find("input", name="as_of", type="date")
    assert {t["value"] for t in tags.find("input", name="sources", type="checkbox")} == {
        "edit",
        "regenerate",
        "copy",
        "share",
        "outcome",
        "rating",
        "review",
    }
    for name in ("min_confidence", "min_agreement"):
        (field,) = tags.find("input", name=name, type="number")
        assert (field["min"], field["max"]) == ("0", "1")
    queue_ids = {
        str(pk) for pk in Queue.objects.filter(project=project).values_list("pk", flat=True)
    }
    assert {t["value"] for t in tags.find("input", name="queues", type="checkbox")} == queue_ids
    assert tags.find("input", name="models", type="text")
    assert tags.find("input", name="csrfmiddlewaretoken")


def test_user_with_several_projects_picks_one(project, other_project, mel):
    membership_set(project=other_project, user=mel, role="ml")
    other_queue = Queue.objects.create(project=other_project, name="Globex checks")
    client = logged_in(mel)
    html = client.get("/exports/").content.decode()
    tags = Tags(html)
    assert {t["value"] for t in tags.find("option")} >= {"acme", "globex"}
    assert "New export from Acme Chat" in html  # alphabetical: Acme before Globex
    html = client.get("/exports/?project=globex").content.decode()
    assert "New export from Globex" in html
    assert Tags(html).find("input", name="queues", value=str(other_queue.pk))


def test_good_post_creates_the_job_and_redirects_to_it(
    world, project, mel, django_capture_on_commit_callbacks
):
    queue = Queue.objects.get(project=project, reason="low_confidence")
    with django_capture_on_commit_callbacks() as enqueued:
        response = logged_in(mel).post(
            "/exports/",
            {
                **GOOD_POST,
                "format": "kto",
                "file_format": "parquet",
                "style": "conversational",
                "since": "2026-11-01",
                "until": "2026-11-30",
                "sources": ["regenerate", "edit"],
                "min_confidence": "0.5",
                "min_agreement": "0.6",
                "queues": [str(queue.pk)],
                "models": " acme-chat-2, acme-chat-3 ,",
                "as_of": "2026-12-01",
            },
        )
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/exports/{job.pk}/"
    assert len(enqueued) == 1  # the build is queued once the job is committed
    assert (job.project, job.created_by, job.status) == (project, mel, "queued")
    assert (job.format, job.file_format, job.style) == ("kto", "parquet", "conversational")
    assert job.filters == {
        "since": "2026-11-01T00:00:00+00:00",
        "until": "2026-11-30T23:59:59.999999+00:00",
        "sources": ["edit", "regenerate"],
        "min_confidence": 0.5,
        "min_agreement": 0.6,
        "queues": [queue.pk],
        "models": ["acme-chat-2", "acme-chat-3"],
        "as_of": "2026-12-01T23:59:59.999999+00:00",
    }


def test_post_without_filters_exports_everything_that_passed_the_gate(world, mel):
    response = logged_in(mel).post("/exports/", GOOD_POST)
    assert response.status_code == 302
    assert ExportJob.objects.get().filters == {}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"since": "2026-12-01", "until": "2026-11-01"}, "since", "Must be before until."),
        ({"min_confidence": "1.5"}, "min_confidence", "less than or equal to 1"),
        ({"min_agreement": "-0.1"}, "min_agreement", "greater than or equal to 0"),
        ({"min_confidence": "many"}, "min_confidence", "Enter a number."),
        ({"since": "yesterday"}, "since", "Enter a valid date."),
        ({"sources": ["edit", "gossip"]}, "sources", "Select a valid choice."),
        ({"queues": ["999999"]}, "queues", "Select a valid choice."),
        ({"format": "csv"}, "format", "Select a valid choice."),
        ({"file_format": ""}, "file_format", "This field is required."),
    ],
)
def test_bad_post_is_400_naming_the_field_and_keeps_the_input(world, mel, change, field, message):
    data = {**GOOD_POST, "models": "acme-chat-2", **change}
    response = logged_in(mel).post("/exports/", data)
    html = response.content.decode()
    assert response.status_code == 400
    assert not ExportJob.objects.exists()
    error = html.index(f'id="id_{field}_error"')
    assert message in html[error : error + 300]
    tags = Tags(html)
    assert tags.find("input", name="models", value="acme-chat-2")  # the input is kept
    if field == "since" and "until" in change:
        assert tags.find("input", name="until", value="2026-11-01")


def test_queue_of_another_project_is_refused(world, mel, other_project):
    foreign = Queue.objects.create(project=other_project, name="Globex checks")
    response = logged_in(mel).post("/exports/", {**GOOD_POST, "queues": [str(foreign.pk)]})
    assert response.status_code == 400
    assert 'id="id_queues_error"' in response.content.decode()
    assert not ExportJob.objects.exists()


# Following a job ---------------------------------------------------------------------------


def test_queued_job_page_polls_its_status_partial(project, mel):
    job = queued_job(project, mel)
    html = logged_in(mel).get(f"/exports/{job.pk}/").content.decode()
    (poller,) = Tags(html).find("div", id="job")
    assert poller["hx-get"] == f"/exports/{job.pk}/status"
    assert poller["hx-trigger"] == "every 1s"
    assert 'id="job-status">queued<' in html
    assert "/download/" not in html


def test_status_partial_keeps_polling_while_running_and_stops_when_done(world, project, mel):
    job = queued_job(project, mel)
    client = logged_in(mel)
    ExportJob.objects.filter(pk=job.pk).update(status="running", progress=0.42, rows=7)
    running = client.get(f"/exports/{job.pk}/status", HTTP_HX_REQUEST="true")
    html = running.content.decode()
    assert running.status_code == 200 and "<html" not in html  # the partial alone
    assert 'hx-trigger="every 1s"' in html and 'id="job-status">running<' in html
    assert 'value="42"' in html and "7 training rows written so far" in html
    assert "no-cache" in running["Cache-Control"]

    ExportJob.objects.filter(pk=job.pk).update(status="queued", progress=0)
    build_export(job.pk)
    done = client.get(f"/exports/{job.pk}/status", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in done and "hx-get" not in done
    assert 'id="job-status">done<' in done and 'value="100"' in done
    assert f'href="/exports/{job.pk}/download/train"' in done


def test_failed_job_shows_its_error_and_stops_polling(project, mel):
    job = queued_job(project, mel)
    services.export_fail(job_id=job.pk, error="OSError: <disk> full")
    client = logged_in(mel)
    for url in (f"/exports/{job.pk}/", f"/exports/{job.pk}/status"):
        html = client.get(url).content.decode()
        assert 'id="job-status">failed<' in html
        assert "OSError: &lt;disk&gt; full" in html
        assert "hx-trigger" not in html and "/download/" not in html
    assert client.get(f"/exports/{job.pk}/download/train").status_code == 404


def test_done_job_page_shows_the_manifest_and_links_every_file(world, project, mel, media):
    job = built_job(
        project, mel, filters={"sources": ["edit", "regenerate"], "min_confidence": 0.5}
    )
    html = logged_in(mel).get(f"/exports/{job.pk}/").content.decode()
    manifest = job.manifest
    assert manifest["rows"] == {"train": 3, "eval": 1}
    assert 'id="job-status">done<' in html and "hx-trigger" not in html
    assert '<th scope="row">train</th><td class="num">3</td>' in html
    assert '<th scope="row">eval</th><td class="num">1</td>' in html
    # Rows by source: edit 2 in train, 1 in eval; regenerate 1 in train.
    assert '<th scope="row">edit</th><td class="num">2</td><td class="num">1</td>' in html
    assert '<th scope="row">regenerate</th><td class="num">1</td><td class="num">0</td>' in html
    assert (
        f'Rejected in review</th><td class="num">{manifest["excluded"]["rejected_by_review"]}'
        in html
    )
    assert "Minimum confidence</dt><dd>0.5</dd>" in html
    assert "Sources</dt><dd>edit, regenerate</dd>" in html
    as_of = datetime.fromisoformat(manifest["as_of"])
    assert f"{as_of:%Y-%m-%d %H:%M:%S} UTC" in html
    train_sha = file_sha256(media / job.directory / "train.jsonl")
    assert train_sha in html
    links = {t["href"] for t in Tags(html).find("a") if "/download/" in t.get("href", "")}
    assert links == {
        f"/exports/{job.pk}/download/{key}" for key in ("train", "eval", "manifest", "card")
    }


def test_bare_format_links_its_sidecars(world, project, mel):
    job = built_job(project, mel, fmt="openai_preference")
    html = logged_in(mel).get(f"/exports/{job.pk}/").content.decode()
    links = {t["href"] for t in Tags(html).find("a") if "/download/" in t.get("href", "")}
    keys = ("train", "eval", "train.meta", "eval.meta", "manifest", "card")
    assert links == {f"/exports/{job.pk}/download/{key}" for key in keys}
    assert "train.meta.jsonl" in html


# Downloads ---------------------------------------------------------------------------------


def test_download_streams_each_file_of_the_job(world, project, mel, media):
    job = built_job(project, mel)
    client = logged_in(mel)
    response = client.get(f"/exports/{job.pk}/download/train")
    assert response["Content-Disposition"] == (
        f'attachment; filename="acme-dpo-{job.pk}-train.jsonl"'
    )
    rows = [json.loads(line) for line in streamed(response).decode().splitlines()]
    assert len(rows) == job.manifest["rows"]["train"] == 3
    assert {row["id"] for row in rows} == {
        f"lbl_{world.labels[name].pk}" for name in ("s1", "s2", "s3")
    }
    eval_rows = streamed(client.get(f"/exports/{job.pk}/download/eval")).decode().splitlines()
    assert len(eval_rows) == job.manifest["rows"]["eval"] == 1
    manifest = json.loads(streamed(client.get(f"/exports/{job.pk}/download/manifest")))
    assert manifest["export_id"] == job.pk
    card = streamed(client.get(f"/exports/{job.pk}/download/card")).decode()
    assert card.startswith("---\nconfigs:")


def test_parquet_download_is_the_file_on_disk(world, project, mel, media):
    job = built_job(project, mel, file_format="parquet")
    body = streamed(logged_in(mel).get(f"/exports/{job.pk}/download/train"))
    assert body == (media / job.directory / "train.parquet").read_bytes()


@pytest.mark.parametrize("file", ["secrets", "train.meta", "..", "manifest.json"])
def test_download_of_a_file_the_job_does_not_have_is_404(world, project, mel, file):
    job = built_job(project, mel)  # dpo in JSON Lines: no sidecars
    assert logged_in(mel).get(f"/exports/{job.pk}/download/{file}").status_code == 404


def test_download_of_an_unfinished_job_is_404(project, mel):
    job = queued_job(project, mel)
    assert logged_in(mel).get(f"/exports/{job.pk}/download/train").status_code == 404


# The list of past exports ------------------------------------------------------------------


def test_list_shows_status_progress_rows_and_links(world, project, mel):
    done = built_job(project, mel)
    waiting = queued_job(project, mel)
    html = logged_in(mel).get("/exports/").content.decode()
    assert f'href="/exports/{done.pk}/download/train"' in html
    assert f'href="/exports/{waiting.pk}/download/train"' not in html
    assert '<span class="status status-done">done</span>' in html
    assert '<span class="status status-queued">queued</span>' in html
    (bar,) = Tags(html).find("progress", aria_label=f"Progress of export {done.pk}")
    assert bar["value"] == "100"
    assert html.index(f"#{waiting.pk}<") < html.index(f"#{done.pk}<")  # newest first
    assert ">mel<" in html


def test_list_costs_the_same_queries_for_3_or_30_exports(project, mel):
    for _ in range(3):
        queued_job(project, mel)
    client = logged_in(mel)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/exports/").status_code == 200
    for _ in range(27):
        queued_job(project, mel)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/exports/")
    assert response.content.decode().count('class="status status-queued"') == 30
    assert len(many) == len(few)


def test_everything_shown_is_escaped(world, project, mel):
    project.name = "<script>alert(1)</script>"
    project.save(update_fields=["name"])
    job = built_job(project, mel, filters={"models": ["<b>bold</b>"]})
    client = logged_in(mel)
    for url in ("/exports/", f"/exports/{job.pk}/"):
        html = client.get(url).content.decode()
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    detail = client.get(f"/exports/{job.pk}/").content.decode()
    assert "<b>bold</b>" not in detail and "&lt;b&gt;bold&lt;/b&gt;" in detail
    bad = client.post(
        "/exports/", {**GOOD_POST, "min_confidence": "2", "models": '"><script>x</script>'}
    )
    assert bad.status_code == 400
    assert b"<script>x" not in bad.content
    assert b'value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in bad.content
