"""A fresh demo tells the product's story: `seed_demo` leaves queues whose reviewers agree
well enough for the gate (alpha at or above the minimum), so an export made right after has
pairs people judged (source "review") and an evaluation split of agreed, held-out items."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from exports import services as export_services
from exports.filters import parse_filters
from exports.models import ExportJob
from review.models import Item, Queue

pytestmark = pytest.mark.django_db

SESSIONS = 60  # a small demo: the default 300 takes a minute


@pytest.fixture
def demo(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    out = StringIO()
    call_command("seed_demo", "--sessions", str(SESSIONS), stdout=out)
    return Queue.objects.get(project__slug="demo", name="Model comparison"), out.getvalue()


def test_a_fresh_demo_has_queues_that_pass_the_gate(demo):
    _, printed = demo
    passing = []
    for queue in Queue.objects.filter(project__slug="demo"):
        results = queue.snapshots.latest().results
        deciding = results["deciding_question"]
        alpha = results["questions"][deciding]["alpha"] if deciding else None
        if alpha is not None and alpha >= queue.min_alpha:
            passing.append(queue.name)
    assert {"Model comparison", "Low-confidence labels"} <= set(passing)
    assert Item.objects.filter(
        queue__project__slug="demo", decision=Item.Decision.ACCEPTED, held_out=True
    ).exists()
    assert "dave (careless)" in printed


def test_an_export_of_a_fresh_demo_has_review_rows_and_an_eval_split(demo):
    comparison, _ = demo
    project = comparison.project
    job = export_services.export_job_create(
        project=project,
        created_by=None,
        fmt="dpo",
        file_format="jsonl",
        filters=parse_filters({}, project=project),
        in_process=True,
    )
    job = export_services.export_build(job=job)
    assert job.status == ExportJob.Status.DONE, job.error
    manifest = job.manifest
    assert manifest["counts_by_source"]["train"]["review"] > 0
    assert manifest["counts_by_source"]["eval"]["review"] > 0
    assert manifest["rows"]["eval"] > 0
    # The eval file holds those rows: agreed, held-out pairs.
    eval_file = next(f for f in manifest["files"] if f["split"] == "eval")
    rows = [
        json.loads(line)
        for line in (Path(settings.MEDIA_ROOT) / job.directory / eval_file["name"])
        .read_text()
        .splitlines()
    ]
    assert len(rows) == manifest["rows"]["eval"]
