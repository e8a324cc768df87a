"""What goes into an export (DESIGN.md, "Exports"), and why the rest does not.

Training split: active labels of the format's kinds that either passed review (accepted)
or were auto-accepted (not routed to review) at or above the project's confidence
threshold; never held-out items, rejected or excluded labels, labels still in review,
high-retry flags or ratings. Evaluation split: held-out labels that review accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import batched
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.core.validators import slug_re
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    Func,
    Max,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast
from django.http import Http404

from exports.filters import REVIEW_SOURCE, ExportFilters

# Re-exported for the modules that still import them from here (exports/api.py, bench/,
# demo/, tests/test_api_schema.py); they live in exports/filters.py.
from exports.formats import LabelRow, kinds_for
from exports.models import ExportJob
from feedback.models import Label, RoutingPolicy
from review.models import Item, Queue
from tenancy.access import access_project, projects_for_user
from tenancy.models import Membership, Project

EXPORT_ROLES = (Membership.Role.ADMIN, Membership.Role.ML)
ROW_COLUMNS = [f for f in LabelRow.__dataclass_fields__ if f != "id_prefix"]


def access_export_project(user: User | AnonymousUser, slug: str) -> Project:
    """The project if the user may export from it. Not a member (or not a slug at all):
    404, as for any project page (`tenancy.access.access_project`); a member without
    export permission (annotator, lead): 403."""
    if not isinstance(slug, str) or not slug_re.match(slug):
        raise Http404("No such project.")
    project = access_project(user, slug)
    if not projects_for_user(user, EXPORT_ROLES).filter(pk=project.pk).exists():
        raise PermissionDenied("You may not export from this project (ML or admin role needed).")
    return project


def access_export(user: User | AnonymousUser, export_id: int) -> ExportJob:
    job = ExportJob.objects.select_related("project").filter(pk=export_id).first()
    if job is None:
        raise Http404("No such export.")
    access_export_project(user, job.project.slug)
    return job


def export_files(job: ExportJob) -> dict[str, str]:
    """A job's files by download key (`?file=` of the API, the page's links)."""
    return {
        "train": f"train.{job.file_format}",
        "eval": f"eval.{job.file_format}",
        "train.meta": "train.meta.jsonl",
        "eval.meta": "eval.meta.jsonl",
        "manifest": "manifest.json",
        "card": "README.md",
    }


@dataclass(frozen=True)
class ExportFile:
    path: Path
    download_name: str


def export_file(job: ExportJob, key: str) -> ExportFile:
    """One file of a finished export (by `export_files` key) and the name it downloads
    as; Http404 for an unfinished job or a file it does not have."""
    if job.status != ExportJob.Status.DONE:
        raise Http404("This export has no files yet.")
    name = export_files(job).get(key)
    path = Path(settings.MEDIA_ROOT) / job.directory / name if name else None
    if path is None or not path.is_file():
        raise Http404("No such file in this export.")
    return ExportFile(path, f"{job.project.slug}-{job.format}-{job.pk}-{name}")


def exports_for_user(user: User | AnonymousUser) -> QuerySet[ExportJob]:
    projects = projects_for_user(user, EXPORT_ROLES)
    return ExportJob.objects.filter(project__in=projects).select_related("project", "created_by")


def _held_out() -> Q:
    return Q(Exists(Item.objects.filter(label=OuterRef("pk"), held_out=True)))


def _gate(threshold: float) -> Q:
    return Q(review_outcome=Label.Outcome.ACCEPTED) | Q(
        review_outcome="", needs_review=False, confidence__gte=threshold
    )


def _filters_q(filters: ExportFilters) -> Q:
    q = Q()
    if filters.since:
        q &= Q(occurred_at__gte=filters.since)
    if filters.until:
        q &= Q(occurred_at__lte=filters.until)
    if filters.sources:
        q &= Q(source__in=filters.sources)
    if filters.min_confidence is not None:
        # Derived confidence; a label people accepted is held to min_agreement instead.
        q &= Q(confidence__gte=filters.min_confidence) | Q(review_outcome=Label.Outcome.ACCEPTED)
    if filters.models:
        q &= Q(model__in=filters.models)
    if filters.min_agreement is not None:
        # Reviewed labels need that much agreement; auto-accepted ones were never reviewed.
        reviewed = Item.objects.filter(label=OuterRef("pk"), agreement__isnull=False)
        q &= Q(~Exists(reviewed), review_outcome="") | Q(
            Exists(reviewed.filter(agreement__gte=filters.min_agreement))
        )
    if filters.queues:
        q &= Q(Exists(Item.objects.filter(label=OuterRef("pk"), queue_id__in=filters.queues)))
    return q


def _eligible(fmt: str) -> Q:
    q = Q(active=True, kind__in=kinds_for(fmt))
    if fmt == "sft":  # SFT learns only from good answers
        q &= Q(kind=Label.Kind.PREFERENCE_PAIR) | Q(label=True)
    return q


def split_querysets(
    project: Project, fmt: str, filters: ExportFilters, policy: RoutingPolicy
) -> dict[str, QuerySet[Label]]:
    """The labels of each split, ordered by id (so files are reproducible)."""
    base = Label.objects.filter(_eligible(fmt), _filters_q(filters), project=project)
    return {
        "train": base.filter(_gate(policy.confidence_threshold), ~_held_out()).order_by("id"),
        "eval": base.filter(_held_out(), review_outcome=Label.Outcome.ACCEPTED).order_by("id"),
    }


def exclusion_counts(
    project: Project, fmt: str, filters: ExportFilters, policy: RoutingPolicy
) -> dict[str, int]:
    """Why the project's other labels are not in the training split (three queries)."""
    eligible, gate = _eligible(fmt), _gate(policy.confidence_threshold)
    trainable = Q(active=True) & eligible
    counts = Label.objects.filter(project=project).aggregate(
        inactive=Count("pk", filter=Q(active=False)),
        high_retry=Count("pk", filter=Q(active=True, kind=Label.Kind.HIGH_RETRY)),
        rating=Count("pk", filter=Q(active=True, kind=Label.Kind.RATING)),
        not_for_this_format=Count(
            "pk",
            filter=Q(active=True)
            & ~Q(kind__in=[Label.Kind.HIGH_RETRY, Label.Kind.RATING])
            & ~eligible,
        ),
        in_review=Count("pk", filter=trainable & Q(review_outcome="", needs_review=True)),
        below_confidence=Count(
            "pk",
            filter=trainable
            & Q(review_outcome="", needs_review=False, confidence__lt=policy.confidence_threshold),
        ),
        rejected_by_review=Count("pk", filter=trainable & Q(review_outcome=Label.Outcome.REJECTED)),
        excluded_by_review=Count("pk", filter=trainable & Q(review_outcome=Label.Outcome.EXCLUDED)),
        held_out=Count("pk", filter=trainable & gate & _held_out()),
    )
    if chosen := _filters_q(filters):  # an empty Q negated would match every row
        counts["filtered_out"] = Label.objects.filter(
            trainable & gate & ~_held_out() & ~chosen, project=project
        ).count()
    return {key: value for key, value in counts.items() if value}


@dataclass(frozen=True)
class SplitSizes:
    labels: dict[str, int]  # by split
    pairs: dict[str, int]  # review pairs by split
    newest: datetime | None  # the newest selected row's moment


def split_sizes(
    querysets: dict[str, QuerySet[Label]], review_pairs: dict[str, QuerySet[Item]]
) -> SplitSizes:
    """How many labels and review pairs each split holds, and the newest of them (what
    `as_of_for` measures from): one aggregate query a split, one a split with review
    pairs."""
    labels, pairs, newest = {}, {}, []
    for split, queryset in querysets.items():
        found = queryset.aggregate(n=Count("pk"), newest=Max("occurred_at"))
        labels[split] = found["n"]
        newest.append(found["newest"])
        found = review_pairs[split].aggregate(n=Count("pk"), newest=Max("created_at"))
        pairs[split] = found["n"]
        newest.append(found["newest"])
    moments = [moment for moment in newest if moment is not None]
    return SplitSizes(labels, pairs, max(moments) if moments else None)


def as_of_for(
    querysets: dict[str, QuerySet[Label]],
    filters: ExportFilters,
    review_pairs: dict[str, QuerySet[Item]] | None = None,
) -> datetime | None:
    """The moment recency is measured from: the filter's, else the newest selected row
    (so the same data and filters give the same weights, whenever the export runs)."""
    if filters.as_of:
        return filters.as_of
    newest = [qs.aggregate(newest=Max("occurred_at"))["newest"] for qs in querysets.values()]
    newest += [
        qs.aggregate(newest=Max("created_at"))["newest"] for qs in (review_pairs or {}).values()
    ]
    newest = [moment for moment in newest if moment is not None]
    return max(newest) if newest else None


def label_rows(queryset: QuerySet[Label], chunk_size: int = 2000) -> Iterator[LabelRow]:
    """Stream labels as LabelRows (a server-side cursor on PostgreSQL)."""
    for values in queryset.values_list(*ROW_COLUMNS).iterator(chunk_size=chunk_size):
        yield LabelRow(**dict(zip(ROW_COLUMNS, values, strict=True)))


class _LonePrompt(Func):
    """A prompt of one user message with text content: that text (what
    `formats.prompt_text` returns for it); NULL for any other prompt. The CASE keeps
    jsonb_array_length away from prompts that are not arrays."""

    template = (
        "CASE WHEN jsonb_typeof(%(expressions)s) <> 'array' THEN NULL"
        " WHEN jsonb_array_length(%(expressions)s) = 1"
        " AND %(expressions)s -> 0 ->> 'role' = 'user'"
        " AND jsonb_typeof(%(expressions)s -> 0 -> 'content') = 'string'"
        " THEN %(expressions)s -> 0 ->> 'content' END"
    )
    output_field = TextField()


@contextmanager
def _streaming_connection() -> Iterator[BaseDatabaseWrapper | None]:
    """A connection of its own to stream a long read from (PostgreSQL, outside a
    transaction), so that the build's progress writes on the default connection go on
    meanwhile; None inside a transaction (a caller's `atomic()`, a test), where another
    connection would not see its rows, and on SQLite."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield None
        return
    reader = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        yield reader
    finally:
        reader.close()


def label_chunks(
    queryset: QuerySet[Label],
    *,
    chunk_size: int = 5000,
    fmt: str | None = None,
    style: str = "standard",
) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """Stream labels in chunks of tuples of `chunks.COLUMNS`, in the queryset's order,
    texts as stored (the chunk functions escape them: exports/chunks.py says why).

    Given the export's `fmt` and `style`, only what its rows are built from is sent (the
    rest comes as None): no completion for pair-only formats, no lone prompt where the
    prompt is written as messages, and no prompt JSON beside a lone prompt (the chunk
    functions read it only when the lone prompt is None). Fewer bytes for PostgreSQL to
    produce and for psycopg to decode.

    On PostgreSQL outside a transaction the rows come in one query streamed in chunks
    (psycopg's `stream`: PostgreSQL keeps sending while a chunk is written, as for COPY,
    and no WITH HOLD cursor materialises the result first); otherwise from a server-side
    cursor (no hold inside a transaction) or SQLite's cursor."""
    postgres = connection.vendor == "postgresql"
    nothing = Value(None, output_field=TextField())
    wants_lone = fmt in (None, "dpo", "kto") and style != "conversational"
    lone: Func | Value = _LonePrompt("prompt") if postgres and wants_lone else nothing
    prompt_json: Func | Case = Cast("prompt", TextField())
    if lone is not nothing:
        prompt_json = Case(When(lone_prompt__isnull=True, then=prompt_json))
    columns = queryset.annotate(
        lone_prompt=lone,
        prompt_json=prompt_json,
        chosen_out=F("chosen"),
        rejected_out=F("rejected"),
        completion_out=nothing if fmt in ("dpo", "openai_preference") else F("completion"),
    ).values_list(
        "id",
        "kind",
        "source",
        "label",
        "weight",
        "occurred_at",
        "prompt_json",
        "lone_prompt",
        "chosen_out",
        "rejected_out",
        "completion_out",
    )
    with _streaming_connection() as reader:
        if reader is None:
            compiler = columns.query.get_compiler(connection=connection)
            rows = compiler.results_iter(
                tuple_expected=True, chunked_fetch=True, chunk_size=chunk_size
            )
            yield from batched(rows, chunk_size)
            return
        compiler = columns.query.get_compiler(connection=reader)
        sql, params = compiler.as_sql()
        converters = compiler.get_converters([column for column, _, _ in compiler.select])
        from psycopg.types.datetime import TimestamptzLoader  # PostgreSQL only

        with reader.cursor() as cursor:
            # psycopg's own (C) timestamptz loader: Django's wraps it in Python to set the
            # connection's zone, which is already the session's (UTC; Django sets it).
            cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
            rows = cursor.cursor.stream(sql, params, size=chunk_size)
            if converters:
                rows = map(tuple, compiler.apply_converters(rows, converters))
            yield from batched(rows, chunk_size)


def review_pair_querysets(
    project: Project, fmt: str, filters: ExportFilters
) -> dict[str, QuerySet[Item]]:
    """Free-content items with two responses where reviewers agreed which is better (the
    gate's `preferred_response`): preference pairs of source "review". Held-out ones are the
    evaluation split. They have no derived confidence and no model, so a models filter
    leaves them out."""
    none = {"train": Item.objects.none(), "eval": Item.objects.none()}
    if filters.models or (filters.sources and REVIEW_SOURCE not in filters.sources):
        return none
    # The project's queues first, by value: the item queries then use the index on
    # queue_id (a join on queue__project let the planner scan every project's items), and
    # a project without queues, or whose queues hold no reviewed free pair (one indexed
    # EXISTS), answers without another look at review_item.
    queue_ids = list(Queue.objects.filter(project=project).values_list("id", flat=True))
    if filters.queues:
        chosen = set(filters.queues)
        queue_ids = [queue_id for queue_id in queue_ids if queue_id in chosen]
    if not queue_ids:
        return none
    items = Item.objects.filter(
        queue_id__in=queue_ids,
        label__isnull=True,
        decision=Item.Decision.ACCEPTED,
        preferred_response__isnull=False,
    )
    if filters.since:
        items = items.filter(created_at__gte=filters.since)
    if filters.until:
        items = items.filter(created_at__lte=filters.until)
    if filters.min_agreement is not None:
        items = items.filter(agreement__gte=filters.min_agreement)
    if not items.exists():
        return none
    return {
        "train": items.filter(held_out=False).order_by("id"),
        "eval": items.filter(held_out=True).order_by("id"),
    }


def review_pair_rows(
    queryset: QuerySet[Item], weight: float, chunk_size: int = 2000
) -> Iterator[LabelRow]:
    """Stream reviewed free-content items as pair rows: chosen = the preferred response."""
    for item_id, content, preferred, created_at in queryset.values_list(
        "id", "content", "preferred_response", "created_at"
    ).iterator(chunk_size=chunk_size):
        if preferred not in (0, 1):  # the queryset asks for a preference; the type cannot know
            continue
        responses = content.get("responses", [])
        prompt = content.get("prompt", "")
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        yield LabelRow(
            id=item_id,
            kind=Label.Kind.PREFERENCE_PAIR.value,
            source=REVIEW_SOURCE,
            prompt=messages,
            chosen=responses[preferred],
            rejected=responses[1 - preferred],
            completion="",
            label=None,
            weight=weight,
            occurred_at=created_at,
            id_prefix="item",
        )
