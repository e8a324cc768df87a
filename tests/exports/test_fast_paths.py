"""What the faster export paths must keep: orjson escapes every text as `json.dumps`
does (the JSONL chunks); on PostgreSQL outside a transaction, the manifest's exclusion
counts computed on a connection of their own are those of the selector, and the gate
decided while the rows are written still fails the job without files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exports import selectors, services
from exports.chunks import RowWeight, jsonl_chunk
from exports.filters import ExportFilters, parse_filters
from exports.formats import LabelRow, rows_for
from exports.models import ExportJob
from feedback.models import Label, RoutingPolicy
from tenancy.models import Project
from tests.exports.test_chunks import make_labels

# Every control character, DEL, the JSON specials, line and paragraph separators,
# non-ASCII in two, three and four bytes.
TEXTS = [
    "".join(chr(code) for code in range(0x21)),
    '\x7f " \\ / \u2028 \u2029 é 日本 🙂 \ufeff \U0010ffff',
    "",
    "plain",
]
MOMENT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _tuple(n: int, text: str, prompt: list[dict[str, str]], *, lone_wanted: bool) -> tuple:
    """A row of `chunks.COLUMNS` as `selectors.label_chunks` sends it on PostgreSQL,
    unescaped: the prompt JSON only without a lone prompt, where the format wants one."""
    lone = prompt[0]["content"] if len(prompt) == 1 and prompt[0]["role"] == "user" else None
    lone = lone if lone_wanted else None
    return (
        n,
        Label.Kind.PREFERENCE_PAIR.value,
        "edit",
        None,
        0.75,
        MOMENT - timedelta(days=n),
        None if lone is not None else json.dumps(prompt),
        lone,
        f"chosen {text}",
        text,
        "",
    )


@pytest.mark.parametrize("style", ["standard", "conversational"])
@pytest.mark.parametrize("fmt", ["dpo", "kto", "sft", "openai_preference"])
def test_jsonl_chunk_escapes_every_text_as_json_dumps(fmt, style):
    weight_of = RowWeight(MOMENT, 30.0)
    rows: list[tuple] = []
    expected = b""
    for text in TEXTS:
        for prompt in ([{"role": "user", "content": text}], [{"role": "system", "content": text}]):
            lone_wanted = fmt in ("dpo", "kto") and style == "standard"
            row = _tuple(len(rows), text, prompt, lone_wanted=lone_wanted)
            rows.append(row)
            label = LabelRow(
                id=row[0],
                kind=row[1],
                source=row[2],
                prompt=prompt,
                chosen=row[8],
                rejected=row[9],
                completion="",
                label=None,
                weight=row[4],
                occurred_at=row[5],
            )
            age = (MOMENT - label.occurred_at).total_seconds() / 86400
            weight = round(label.weight * 0.5 ** (age / 30.0), 6)
            for out in rows_for(fmt, style, label, weight):
                if fmt == "openai_preference":
                    for key in ("id", "source", "weight", "created_at"):
                        out.pop(key)
                line = json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n"
                expected += line.encode()
    chunk = jsonl_chunk(fmt, style, rows, weight_of, bare=fmt == "openai_preference")
    assert chunk.data == expected
    assert chunk.rows == len(expected.splitlines())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_exclusions_counted_meanwhile_are_the_selectors(media):
    project = Project.objects.create(slug="meanwhile", name="Meanwhile")
    make_labels(project)
    Label.objects.filter(project=project, source="copy").update(active=False)
    Label.objects.filter(project=project, source="regenerate").update(
        review_outcome=Label.Outcome.REJECTED
    )
    policy = RoutingPolicy.objects.get(project=project)
    job = services.export_job_create(
        project=project,
        created_by=None,
        fmt="dpo",
        file_format="jsonl",
        filters=parse_filters({}, project=project),
        allow_below_policy=True,
        in_process=True,
    )
    job = services.export_build(job=job)
    expected = selectors.exclusion_counts(project, "dpo", ExportFilters(), policy)
    assert expected["inactive"] and expected["rejected_by_review"]
    assert job.manifest["excluded"] == expected


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_gate_decided_meanwhile_fails_the_job_and_leaves_no_files(media, file_format):
    """Outside a transaction the gate's aggregates run while the rows are written: below
    the policy, the job fails as before and what was written is gone."""
    project = Project.objects.create(slug="gated", name="Gated")
    make_labels(project)  # auto-accepted, none verified by people
    RoutingPolicy.objects.filter(project=project).update(min_human_share=0.5)
    job = services.export_job_create(
        project=project,
        created_by=None,
        fmt="dpo",
        file_format=file_format,
        filters=parse_filters({}, project=project),
        in_process=True,
    )
    job = services.export_build(job=job)
    assert job.status == "failed" and "human-verified" in job.error.lower()
    stored = ExportJob.objects.get(pk=job.pk)
    assert (stored.status, stored.manifest) == ("failed", {})
    assert not (Path(media) / job.directory).exists()
