from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from exports import services
from exports.filters import parse_filters
from exports.models import ExportJob
from exports.writers import file_sha256
from tests.conftest import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def hf_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    datasets.disable_progress_bars()
    return datasets


def build(project, fmt: str, file_format: str = "jsonl", style: str = "standard", **filters):
    """Build in this process, as the export command does."""
    job = services.export_job_create(
        project=project,
        created_by=None,
        fmt=fmt,
        file_format=file_format,
        style=style,
        filters=parse_filters(filters, project=project),
        in_process=True,
    )
    return services.export_build(job=job)


def files(job, media) -> Path:
    return Path(media) / job.directory


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_dpo_jsonl_rows_are_exactly_the_gated_pairs(world, project, media):
    job = build(project, "dpo")
    rows = read_jsonl(files(job, media) / "train.jsonl")
    expected = {f"lbl_{world.labels[n].pk}" for n in ("s1", "s2", "s3")}
    assert {row["id"] for row in rows} == expected
    s1 = next(row for row in rows if row["id"] == f"lbl_{world.labels['s1'].pk}")
    assert (
        s1["chosen"] == world.labels["s1"].chosen and s1["rejected"] == world.labels["s1"].rejected
    )
    assert s1["prompt"] == "Summarise this report."
    assert set(s1) == {"prompt", "chosen", "rejected", "id", "source", "weight", "created_at"}
    assert [r["id"] for r in read_jsonl(files(job, media) / "eval.jsonl")] == [
        f"lbl_{world.labels['s6'].pk}"
    ]
    manifest = json.loads((files(job, media) / "manifest.json").read_text())
    assert manifest["rows"] == {"train": 3, "eval": 1}
    assert manifest["counts_by_source"]["train"] == {"edit": 2, "regenerate": 1}
    assert manifest["excluded"]["rejected_by_review"] == 1
    train = next(f for f in manifest["files"] if f["name"] == "train.jsonl")
    assert train["sha256"] == file_sha256(files(job, media) / "train.jsonl")
    card = (files(job, media) / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and "split: test" in card


def test_weight_is_recency_decay_times_source_weight(world, project, media):
    newest = max(label.occurred_at for label in world.labels.values())
    half_life_later = newest.replace(year=newest.year + 1).isoformat()
    job = build(project, "dpo", as_of=half_life_later)
    policy = project.policy
    days = (newest.replace(year=newest.year + 1) - world.labels["s1"].occurred_at).days
    rows = {row["id"]: row for row in read_jsonl(files(job, media) / "train.jsonl")}
    s1 = rows[f"lbl_{world.labels['s1'].pk}"]
    expected = world.labels["s1"].weight * 0.5 ** (days / policy.half_life_days)
    assert s1["weight"] == pytest.approx(expected, abs=1e-6)  # weights are rounded to 6 places
    assert s1["weight"] < world.labels["s1"].weight


def test_same_data_and_filters_give_byte_identical_files(world, project, media):
    first = build(project, "kto", "parquet", "conversational")
    second = build(project, "kto", "parquet", "conversational")
    for name in ("train.parquet", "eval.parquet"):
        assert file_sha256(files(first, media) / name) == file_sha256(files(second, media) / name)
    third = build(project, "dpo")
    fourth = build(project, "dpo")
    assert (files(third, media) / "train.jsonl").read_bytes() == (
        files(fourth, media) / "train.jsonl"
    ).read_bytes()


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
@pytest.mark.parametrize(
    ("fmt", "style", "columns"),
    [
        ("dpo", "standard", {"prompt": "string", "chosen": "string", "rejected": "string"}),
        ("dpo", "conversational", {"prompt": "list", "chosen": "list", "rejected": "list"}),
        ("kto", "standard", {"prompt": "string", "completion": "string", "label": "bool"}),
        ("kto", "conversational", {"prompt": "list", "completion": "list", "label": "bool"}),
        ("sft", "standard", {"messages": "list"}),
        (
            "openai_preference",
            "standard",
            {"input": "dict", "preferred_output": "list", "non_preferred_output": "list"},
        ),
    ],
)
def test_each_format_loads_with_hugging_face_datasets(
    world, project, media, hf_offline, fmt, style, file_format, columns
):
    job = build(project, fmt, file_format, style)
    directory = files(job, media)
    dataset = hf_offline.load_dataset(
        file_format if file_format == "parquet" else "json",
        data_files={
            "train": str(directory / f"train.{file_format}"),
            "test": str(directory / f"eval.{file_format}"),
        },
        cache_dir=str(directory.parent / "hf-cache"),
    )
    train = dataset["train"]
    assert train.num_rows == job.manifest["rows"]["train"] > 0
    assert dataset["test"].num_rows == job.manifest["rows"]["eval"]
    row = train[0]
    kinds = {"string": str, "list": list, "bool": bool, "dict": dict}
    for column, kind in columns.items():
        assert isinstance(row[column], kinds[kind]), (column, row[column])
    if style == "conversational" and fmt in ("dpo", "kto"):
        answer = row["chosen"] if fmt == "dpo" else row["completion"]
        assert answer[0]["role"] == "assistant" and row["prompt"][0]["role"] == "user"
    if fmt == "sft":
        assert row["messages"][-1]["role"] == "assistant"
    if fmt == "openai_preference" and file_format == "jsonl":
        assert "id" not in row  # bare rows; the meta fields are in the sidecar
        meta = read_jsonl(directory / "train.meta.jsonl")
        assert len(meta) == train.num_rows and set(meta[0]) == {
            "id",
            "source",
            "weight",
            "created_at",
        }
    else:
        assert {"id", "source", "weight", "created_at"} <= set(train.column_names)


def test_api_starts_an_export_reports_it_and_streams_the_download(world, project, mel, media):
    client = token_client(mel)
    response = client.post(
        "/api/v1/exports",
        {
            "project": "acme",
            "format": "dpo",
            "file_format": "jsonl",
            "filters": {
                "since": "2026-11-01",
                "sources": ["edit", "regenerate"],
                "min_confidence": 0.5,
            },
        },
        format="json",
    )
    assert response.status_code == 202 and response.json()["status"] == "queued"
    job_id = response.json()["id"]
    # The build is queued on commit; in tests run it as the worker would.
    from exports.tasks import build_export

    assert build_export(job_id) == "done"
    assert build_export(job_id) == "not claimable"  # a re-delivered task does nothing
    body = client.get(f"/api/v1/exports/{job_id}").json()
    assert body["status"] == "done" and body["progress"] == 1.0
    assert body["manifest"]["rows"]["train"] == 3
    download = client.get(f"/api/v1/exports/{job_id}/download")
    assert download.status_code == 200 and download.streaming
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert len(lines) == 3
    manifest = client.get(f"/api/v1/exports/{job_id}/download?file=manifest")
    assert json.loads(b"".join(manifest.streaming_content))["export_id"] == job_id
    assert client.get(f"/api/v1/exports/{job_id}/download?file=secrets").status_code == 400


def test_export_permissions(world, project, alice, carol, owen, mel):
    body = {"project": "acme", "format": "dpo"}
    assert token_client(alice).post("/api/v1/exports", body, format="json").status_code == 403
    assert token_client(carol).post("/api/v1/exports", body, format="json").status_code == 403
    assert token_client(owen).post("/api/v1/exports", body, format="json").status_code == 404
    job_id = token_client(mel).post("/api/v1/exports", body, format="json").json()["id"]
    assert token_client(owen).get(f"/api/v1/exports/{job_id}").status_code == 404
    assert token_client(alice).get(f"/api/v1/exports/{job_id}").status_code == 403
    assert token_client(owen).get("/api/v1/exports").json()["exports"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "csv"}, "format"),
        ({"file_format": "xlsx"}, "file_format"),
        ({"filters": {"since": "soon"}}, "since"),
        ({"filters": {"min_confidence": 2}}, "min_confidence"),
        ({"filters": {"sources": ["vibes"]}}, "sources"),
        ({"filters": {"queues": [424242]}}, "queues"),
    ],
)
def test_bad_export_request_is_400_naming_the_field(project, mel, body, field):
    response = token_client(mel).post(
        "/api/v1/exports", {"project": "acme", "format": "dpo", **body}, format="json"
    )
    assert response.status_code == 400
    assert field in json.dumps(response.json())
    assert not ExportJob.objects.exists()


def test_job_left_running_by_a_dead_worker_is_picked_up_again(world, project, media):
    from datetime import timedelta

    from django.utils import timezone

    job = ExportJob.objects.create(project=project, format="dpo", file_format="jsonl")
    assert services.export_claim(job_id=job.pk) is not None
    assert services.export_claim(job_id=job.pk) is None  # a live worker holds it
    later = timezone.now() + services.stale_after() + timedelta(seconds=1)
    assert services.exports_resume_stale(now=later) == [job.pk]
    taken = services.export_claim(job_id=job.pk, now=later)
    assert taken is not None and taken.attempts == 2
    services.export_build(job=taken)
    job.refresh_from_db()
    assert job.status == "done"


def test_export_command_writes_the_files_and_rejects_bad_options(world, project, tmp_path, capsys):
    out = tmp_path / "dpo.jsonl"
    call_command("export", "--project", "acme", "--format", "dpo", "--out", str(out))
    assert len(out.read_text().splitlines()) == 3
    assert (tmp_path / "dpo.eval.jsonl").exists() and (tmp_path / "dpo.manifest.json").exists()
    assert "100%" in capsys.readouterr().err
    with pytest.raises(CommandError, match="--project"):
        call_command("export", "--project", "nope", "--format", "dpo", "--out", str(out))
    with pytest.raises(CommandError, match="--since"):
        call_command(
            "export",
            "--project",
            "acme",
            "--format",
            "dpo",
            "--out",
            str(out),
            "--since",
            "whenever",
        )
    with pytest.raises(CommandError, match="--queues"):
        call_command(
            "export", "--project", "acme", "--format", "dpo", "--out", str(out), "--queues", "a,b"
        )
    with pytest.raises(CommandError, match="--min-confidence"):
        call_command(
            "export",
            "--project",
            "acme",
            "--format",
            "dpo",
            "--out",
            str(out),
            "--min-confidence",
            "2",
        )
    with pytest.raises(CommandError, match="--out"):
        call_command(
            "export",
            "--project",
            "acme",
            "--format",
            "dpo",
            "--out",
            str(tmp_path / "missing" / "x.jsonl"),
        )


def test_the_export_command_builds_its_job_itself_and_never_queues_it(
    world, project, tmp_path, django_capture_on_commit_callbacks
):
    out = tmp_path / "kto.jsonl"
    with django_capture_on_commit_callbacks() as queued:
        call_command("export", "--project", "acme", "--format", "kto", "--out", str(out))
    assert queued == []  # nothing handed to the broker
    job = ExportJob.objects.get()
    assert (job.status, job.attempts, job.created_by, job.format) == ("done", 1, None, "kto")
    assert job.started_at is not None and job.finished_at >= job.started_at


def test_held_out_items_never_reach_training_exports(world, project, media):
    for fmt in ("dpo", "kto", "sft", "openai_preference"):
        job = build(project, fmt)
        directory = files(job, media)
        train = (directory / "train.jsonl").read_text()
        meta = directory / "train.meta.jsonl"
        ids_text = meta.read_text() if meta.exists() else train
        assert f'"lbl_{world.labels["s6"].pk}' not in ids_text
        assert world.labels["s6"].chosen not in train


def test_filters_are_parsed_like_the_api(project):
    assert parse_filters({"since": "2026-11-01"}, project=project).since.day == 1


def test_a_failing_build_marks_the_job_failed_and_the_request_still_answers(
    world, project, mel, settings, tmp_path, django_capture_on_commit_callbacks
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the export folder should go")
    settings.MEDIA_ROOT = blocker  # the build cannot create its folder
    # In-process mode: the build runs when the request's transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(mel).post(
            "/api/v1/exports", {"project": "acme", "format": "dpo"}, format="json"
        )
    assert response.status_code == 202
    job_id = response.json()["id"]
    if not settings.CELERY_TASK_ALWAYS_EAGER:  # with a broker, a worker builds it
        from exports.tasks import build_export

        assert build_export(job_id) == "failed"
    body = token_client(mel).get(f"/api/v1/exports/{job_id}").json()
    assert body["status"] == "failed" and "Error" in body["error"]


def test_pairs_people_judged_directly_are_exported_with_source_review(
    world, review_pairs, project, media
):
    agreed, held_out, disputed = review_pairs.values()
    assert (agreed.decision, agreed.preferred_response) == ("accepted", 0)
    assert (held_out.decision, held_out.preferred_response) == ("accepted", 1)
    assert disputed.preferred_response is None

    job = build(project, "dpo")
    directory = files(job, media)
    train = {row["id"]: row for row in read_jsonl(directory / "train.jsonl")}
    row = train[f"item_{agreed.pk}"]
    assert (row["source"], row["chosen"], row["rejected"]) == (
        "review",
        "Name a prime. A",
        "Name a prime. B",
    )
    assert row["prompt"] == "Name a prime."
    eval_ids = [r["id"] for r in read_jsonl(directory / "eval.jsonl")]
    assert f"item_{held_out.pk}" in eval_ids
    assert f"item_{disputed.pk}" not in train and f"item_{disputed.pk}" not in eval_ids
    assert job.manifest["counts_by_source"]["train"]["review"] == 1

    only_derived = build(project, "dpo", sources=["edit", "regenerate"])
    assert "review" not in only_derived.manifest["counts_by_source"]["train"]
