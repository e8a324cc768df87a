"""An export built at once (the in-process demo: the build runs inside the request that
asked for it) still shows what happened: the page that follows the form says how many rows
were built in how long, with the job's queued, started and finished moments."""

from __future__ import annotations

import re

import pytest

from exports.models import ExportJob
from tests.exports.test_views import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_an_export_built_in_process_shows_what_happened(
    world, project, mel, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the demo's mode: no worker, no broker
    client = logged_in(mel)
    # The build runs after the form's commit, inside the request: done before the redirect.
    with django_capture_on_commit_callbacks(execute=True):
        posted = client.post(
            "/exports/",
            {
                "project": project.slug,
                "format": "dpo",
                "file_format": "jsonl",
                "style": "standard",
                "sources": ["edit", "regenerate"],
                "min_confidence": "0.5",
            },
        )
    job = ExportJob.objects.get()
    assert posted.status_code == 302 and posted["Location"] == f"/exports/{job.pk}/"
    answer = client.get(posted["Location"])
    job.refresh_from_db()
    html = answer.content.decode()
    assert 'id="job-status">done<' in html
    rows = job.manifest["rows"]
    summary = re.search(r'<p class="done-summary">(.*?)</p>', html)
    assert summary is not None
    assert summary.group(1).startswith(
        f"Built {rows['train']} train rows and {rows['eval']} eval row"
    )
    assert re.search(r" in \d+(\.\d)? (ms|s)\.$", summary.group(1))
    steps = re.findall(r"<li><strong>(\w+)</strong> <time", html)
    assert steps == ["Queued", "Started", "Finished"]
    assert "later)" in html


def test_a_queued_export_shows_only_its_first_step(world, project, mel):
    job = ExportJob.objects.create(project=project, created_by=mel, format="dpo")
    html = logged_in(mel).get(f"/exports/{job.pk}/").content.decode()
    assert re.findall(r"<li><strong>(\w+)</strong> <time", html) == ["Queued"]
    assert "done-summary" not in html


def test_a_failed_export_says_when_it_failed(world, project, mel):
    from django.utils import timezone

    now = timezone.now()
    job = ExportJob.objects.create(
        project=project,
        created_by=mel,
        format="dpo",
        status=ExportJob.Status.FAILED,
        started_at=now,
        finished_at=now,
        error="Disk full.",
    )
    html = logged_in(mel).get(f"/exports/{job.pk}/").content.decode()
    assert re.findall(r"<li><strong>(\w+)</strong> <time", html) == [
        "Queued",
        "Started",
        "Failed",
    ]
