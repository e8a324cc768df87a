"""What goes into an export (DESIGN.md, "Exports"), and why the rest does not.

Training split: active labels of the format's kinds that either passed review (accepted)
or were auto-accepted (not routed to review) at or above the project's confidence
threshold; never held-out items, rejected or excluded labels, labels still in review,
high-retry flags or ratings. Evaluation split: held-out labels that review accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.core.validators import slug_re
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet
from django.http import FileResponse, Http404

from core.storable import text_problem
from exports.formats import LabelRow, kinds_for
from exports.inputs import field_name
from exports.models import ExportJob
from feedback.models import Label, RoutingPolicy
from review.models import Item
from tenancy.access import projects_for_user
from tenancy.models import Membership, Project

EXPORT_ROLES = (Membership.Role.ADMIN, Membership.Role.ML)
ROW_COLUMNS = [f for f in LabelRow.__dataclass_fields__ if f != "id_prefix"]
REVIEW_SOURCE = "review"  # free-content pairs judged by people, not derived from behaviour


class FiltersInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class ExportFilters:
    since: datetime | None = None
    until: datetime | None = None
    sources: list[str] = field(default_factory=list)
    min_confidence: float | None = None
    min_agreement: float | None = None
    queues: list[int] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    as_of: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("since", "until", "as_of"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return {key: value for key, value in data.items() if value not in (None, [])}


MAX_LIST = 1000  # queues, models or sources in one filter
MAX_ID = 2**63 - 1  # the largest id a bigint column holds
MAX_MODEL_NAME = 200  # Label.model's column


def _moment(value: Any, name: str, *, end_of_day: bool = False) -> datetime:
    """An aware datetime in UTC. Python cannot hold one before year 1 or after year 9999,
    so "0001-01-01T00:00:00+05:00" (year 0 in UTC) is refused, not stored."""
    if not isinstance(value, str) or len(value) > 40:
        raise FiltersInvalid({name: "Must be an ISO 8601 date or date-time string."})
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FiltersInvalid({name: f"Not an ISO 8601 date: {value!a}."}) from None
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:
        raise FiltersInvalid({name: "Out of range: must be from year 1 to 9999 in UTC."}) from None


def _fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FiltersInvalid({name: "Must be a number from 0 to 1."})
    return float(value)


def _strings(value: Any, name: str, *, max_length: int = MAX_MODEL_NAME) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise FiltersInvalid({name: "Must be a list of strings."})
    if len(value) > MAX_LIST:
        raise FiltersInvalid({name: f"At most {MAX_LIST} values."})
    for text in value:
        if len(text) > max_length:
            raise FiltersInvalid({name: f"Each value at most {max_length} characters."})
        if reason := text_problem(text):
            raise FiltersInvalid({name: reason})
    return sorted(set(value))


def _ids(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise FiltersInvalid({name: "Must be a list of queue ids."})
    if len(value) > MAX_LIST:
        raise FiltersInvalid({name: f"At most {MAX_LIST} values."})
    if out_of_range := [v for v in value if not 1 <= v <= MAX_ID]:
        shown = str(out_of_range[0])
        shown = shown if len(shown) <= 30 else shown[:27] + "..."
        raise FiltersInvalid({name: f"Not a queue id: {shown}."})
    return sorted(set(value))


def parse_filters(raw: Any, *, project: Project) -> ExportFilters:
    """Validated filters, or FiltersInvalid naming each bad filter."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise FiltersInvalid({"filters": "Must be an object."})
    known = {
        "since",
        "until",
        "sources",
        "min_confidence",
        "min_agreement",
        "queues",
        "models",
        "as_of",
    }
    errors = {field_name(key): "Unknown filter." for key in raw if key not in known}
    values: dict[str, Any] = {}
    parsers = {
        "since": lambda v: _moment(v, "since"),
        "until": lambda v: _moment(v, "until", end_of_day=True),
        "as_of": lambda v: _moment(v, "as_of", end_of_day=True),
        "min_confidence": lambda v: _fraction(v, "min_confidence"),
        "min_agreement": lambda v: _fraction(v, "min_agreement"),
        "sources": lambda v: _strings(v, "sources", max_length=40),
        "models": lambda v: _strings(v, "models"),
    }
    for key, parse in parsers.items():
        if raw.get(key) is not None:
            try:
                values[key] = parse(raw[key])
            except FiltersInvalid as invalid:
                errors.update(invalid.errors)
    known_sources = [*Label.Source.values, REVIEW_SOURCE]
    unknown_sources = set(values.get("sources", [])) - set(known_sources)
    if unknown_sources:
        shown = ", ".join(sorted(unknown_sources))
        errors["sources"] = f"Unknown: {shown}. Use {known_sources}."
    if raw.get("queues") is not None:
        try:
            queues = _ids(raw["queues"], "queues")
        except FiltersInvalid as invalid:
            errors.update(invalid.errors)
        else:
            found = set(project.queues.filter(pk__in=queues).values_list("pk", flat=True))
            if missing := sorted(set(queues) - found):
                shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
                errors["queues"] = f"Not queues of project {project.slug}: [{shown}]."
            values["queues"] = sorted(found)
    if "since" in values and "until" in values and values["since"] > values["until"]:
        errors["since"] = "Must be before until."
    if errors:
        raise FiltersInvalid(errors)
    return ExportFilters(**values)


def access_export_project(user: AbstractBaseUser | AnonymousUser, slug: str) -> Project:
    """The project if the user may export from it. Not a member (or not a slug at all):
    404; a member without export permission (annotator, lead): 403."""
    if not isinstance(slug, str) or not slug_re.match(slug):
        raise Http404("No such project.")
    project = projects_for_user(user).filter(slug=slug).first()
    if project is None:
        raise Http404("No such project.")
    if not projects_for_user(user, EXPORT_ROLES).filter(pk=project.pk).exists():
        raise PermissionDenied("You may not export from this project (ML or admin role needed).")
    return project


def access_export(user: AbstractBaseUser | AnonymousUser, export_id: int) -> ExportJob:
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


def export_file_response(job: ExportJob, key: str) -> FileResponse:
    """One file of a finished export, streamed from disk in blocks (constant memory);
    Http404 for an unfinished job or a file it does not have."""
    if job.status != ExportJob.Status.DONE:
        raise Http404("This export has no files yet.")
    name = export_files(job).get(key)
    path = Path(settings.MEDIA_ROOT) / job.directory / name if name else None
    if path is None or not path.is_file():
        raise Http404("No such file in this export.")
    filename = f"{job.project.slug}-{job.format}-{job.pk}-{name}"
    return FileResponse(path.open("rb"), as_attachment=True, filename=filename)


def exports_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[ExportJob]:
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


def review_pair_querysets(
    project: Project, fmt: str, filters: ExportFilters
) -> dict[str, QuerySet[Item]]:
    """Free-content items with two responses where reviewers agreed which is better (the
    gate's `preferred_response`): preference pairs of source "review". Held-out ones are the
    evaluation split. They have no derived confidence and no model, so a models filter
    leaves them out."""
    if filters.models or (filters.sources and REVIEW_SOURCE not in filters.sources):
        return {"train": Item.objects.none(), "eval": Item.objects.none()}
    items = Item.objects.filter(
        queue__project=project,
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
    if filters.queues:
        items = items.filter(queue_id__in=filters.queues)
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
