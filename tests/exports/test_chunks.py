"""The chunked export path (exports/chunks.py, PostgreSQL escaping the texts) writes the
very bytes of the row-by-row path it replaced: `formats.rows_for` on each label, each row
through `json.dumps` (JSONL) or `Table.from_pylist` (Parquet)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from exports import selectors, services, writers
from exports.filters import parse_filters
from exports.formats import BARE_FORMATS, META_FIELDS, arrow_schema, rows_for
from feedback.models import Generation, Label, RoutingPolicy, Session
from tenancy.models import Project

TRICKY = 'Quotes " and \\ backslash,\nnew line,\ttab, \x01\x1f\x7f, café, 日本, \u2028, 🙂 </b>'
PROMPTS = [
    [{"role": "user", "content": "Summarise this report."}],
    [{"role": "user", "content": TRICKY}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}],
    [{"role": "system", "content": "A lone system message."}],
    [{"role": "user"}],
    [{"content": "no role"}],
    [],
]


# Not text: JSON lines carry it as it is; Parquet's string column cannot (neither path).
NUMBER_PROMPT = [{"role": "user", "content": 42}]


def make_labels(project: Project, *, odd: bool = False) -> None:
    now = timezone.now().replace(microsecond=0)
    session = Session.objects.create(
        project=project, external_id="s", first_event_at=now, last_event_at=now
    )
    generation = Generation.objects.create(
        project=project, session=session, external_id="g", output="x", created_at=now
    )
    labels = []
    for n, prompt in enumerate((PROMPTS + [NUMBER_PROMPT] * odd) * 3):
        common = {
            "project": project,
            "session": session,
            "generation": generation,
            "key": f"k{n}",
            "source": ("edit", "regenerate", "copy")[n % 3],
            "rule": "r",
            "prompt": prompt,
            "confidence": 0.9,
            "weight": (1.0, 0.35, 2.5e-7)[n % 3],
            # Whole seconds, microseconds and ages of years (tiny weights: 1e-06 style).
            "occurred_at": now - timedelta(days=n * 97, microseconds=n * 1234 % 2),
        }
        if n % 4 == 3:
            labels.append(
                Label(
                    **common,
                    kind=Label.Kind.COMPLETION,
                    completion=f"{TRICKY} {n}",
                    label=(True, False, None)[n % 3],
                )
            )
        else:
            labels.append(
                Label(
                    **common,
                    kind=Label.Kind.PREFERENCE_PAIR,
                    chosen=f"chosen {n} {TRICKY if n % 2 else 'plain'}",
                    rejected=f"rejected {n}\n",
                )
            )
    Label.objects.bulk_create(labels)
    RoutingPolicy.objects.filter(project=project).update(confidence_threshold=0.5)


def build(project: Project, fmt: str, file_format: str, style: str):
    job = services.export_job_create(
        project=project,
        created_by=None,
        fmt=fmt,
        file_format=file_format,
        style=style,
        filters=parse_filters({}, project=project),
        allow_below_policy=True,
        in_process=True,
    )
    return services.export_build(job=job)


def previous_rows(job) -> list[dict]:
    """What the row-by-row path wrote: rows_for on every label of the train split."""
    project = job.project
    policy = RoutingPolicy.objects.get(project=project)
    filters = parse_filters(job.filters, project=project)
    querysets = selectors.split_querysets(project, job.format, filters, policy)
    as_of = selectors.as_of_for(querysets, filters)
    return [
        row
        for label in selectors.label_rows(querysets["train"])
        for row in rows_for(job.format, job.style, label, services._weight(label, as_of, policy))
    ]


def previous_jsonl(rows: list[dict], bare: bool) -> tuple[bytes, bytes]:
    def line(row: dict) -> bytes:
        return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()

    data, meta = b"", b""
    for row in rows:
        if bare:
            meta += line({key: row.pop(key) for key in META_FIELDS})
        data += line(row)
    return data, meta


def previous_parquet(rows: list[dict], schema: pa.Schema, path: Path) -> bytes:
    writer = pq.ParquetWriter(path, schema, compression="zstd")
    for start in range(0, len(rows), writers.ROW_GROUP):
        batch = rows[start : start + writers.ROW_GROUP]
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    writer.close()
    return path.read_bytes()


FORMATS = [
    ("dpo", "standard"),
    ("dpo", "conversational"),
    ("kto", "standard"),
    ("kto", "conversational"),
    ("sft", "standard"),
    ("openai_preference", "standard"),
]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.mark.django_db
@pytest.mark.parametrize(("fmt", "style"), FORMATS)
def test_jsonl_is_byte_for_byte_the_row_by_row_output(project, media, fmt, style):
    make_labels(project, odd=True)
    job = build(project, fmt, "jsonl", style)
    data, meta = previous_jsonl(previous_rows(job), bare=fmt in BARE_FORMATS)
    folder = Path(media) / job.directory
    assert data  # every format has rows here
    assert (folder / "train.jsonl").read_bytes() == data
    if fmt in BARE_FORMATS:
        assert (folder / "train.meta.jsonl").read_bytes() == meta
    counted = sum(job.manifest["counts_by_source"]["train"].values())
    assert counted == job.rows == len(data.splitlines())


@pytest.mark.django_db
@pytest.mark.parametrize(("fmt", "style"), FORMATS)
def test_parquet_is_byte_for_byte_the_row_by_row_output(
    project, media, tmp_path, monkeypatch, fmt, style
):
    monkeypatch.setattr(writers, "ROW_GROUP", 4)  # several row groups, one split across chunks
    make_labels(project)
    job = build(project, fmt, "parquet", style)
    rows = previous_rows(job)
    expected = previous_parquet(rows, arrow_schema(fmt, style), tmp_path / "previous.parquet")
    written = (Path(media) / job.directory / "train.parquet").read_bytes()
    assert written == expected
    assert pq.ParquetFile(Path(media) / job.directory / "train.parquet").num_row_groups > 1
    assert job.rows == len(rows)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("fmt", "style"), [("dpo", "standard"), ("kto", "conversational")])
def test_build_outside_a_transaction_streams_the_same_bytes(media, tmp_path, fmt, style):
    """Outside a transaction PostgreSQL streams from a reading connection of its own."""
    project = Project.objects.create(slug="outside", name="Outside")
    RoutingPolicy.objects.get_or_create(project=project)
    make_labels(project)
    job = build(project, fmt, "jsonl", style)
    data, _ = previous_jsonl(previous_rows(job), bare=False)
    assert (Path(media) / job.directory / "train.jsonl").read_bytes() == data
    job = build(project, fmt, "parquet", style)
    rows = previous_rows(job)
    expected = previous_parquet(rows, arrow_schema(fmt, style), tmp_path / "previous.parquet")
    assert (Path(media) / job.directory / "train.parquet").read_bytes() == expected
