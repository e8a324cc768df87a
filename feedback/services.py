"""Writes of the feedback app. Each function owns its transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, DateTimeField, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from core.bulk import insert_ignoring_conflicts, update_rows
from feedback.event_schema import (
    MAX_ID_LENGTH,
    EventInvalid,
    ValidEvent,
    clean_text,
    validate_event,
)
from feedback.labelling import derivation_schedule
from feedback.models import Event, Generation, Label, RoutingPolicy, Session
from tenancy.models import Project


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    session_ids: list[int] = field(default_factory=list)

    def as_response(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
        }


def project_create(*, slug: str, name: str = "") -> tuple[Project, bool]:
    """The project with this slug, created if missing, with its routing policy."""
    with transaction.atomic():
        project, created = Project.objects.get_or_create(slug=slug, defaults={"name": name or slug})
        RoutingPolicy.objects.get_or_create(project=project)
    return project, created


def events_ingest(
    *,
    project: Project,
    events: Sequence[Any],
    now: datetime | None = None,
    allowed_types: Collection[str] | None = None,
) -> IngestResult:
    """Validate and store a batch of events; each invalid one is reported, the rest kept.

    `allowed_types` (None: all) are the event types the sender's key may send; an event of
    another type is refused naming `type` (a publishable key cannot send generations).

    Idempotent per (project, event id): a replayed event counts as a duplicate and changes
    nothing, also when identical batches race (the unique index decides, not a prior read).
    Events whose generation has not arrived are stored unlinked and linked when it does.
    Costs a fixed number of queries per batch, whatever its size.
    """
    now = now or timezone.now()
    result = IngestResult()
    valid: list[ValidEvent] = []
    seen: set[str] = set()
    for index, raw in enumerate(events):
        try:
            if allowed_types is not None:
                _check_type_allowed(raw, allowed_types)
            event = validate_event(raw, max_text_bytes=settings.GLEANER_MAX_TEXT_BYTES, now=now)
        except EventInvalid as invalid:
            client_id = raw.get("id") if isinstance(raw, dict) else None
            # Echoed as sent, but encodable: a lone surrogate here would fail the response
            # after the rest of the batch is stored.
            result.errors.append(
                {
                    "index": index,
                    "id": clean_text(client_id[:MAX_ID_LENGTH])
                    if isinstance(client_id, str)
                    else None,
                    "errors": {field: clean_text(m) for field, m in invalid.errors.items()},
                }
            )
            continue
        if event.client_id in seen:
            result.duplicates += 1
            continue
        seen.add(event.client_id)
        valid.append(event)
    result.rejected = len(result.errors)
    if not valid:
        return result

    with transaction.atomic():
        session_ids = _sessions_upsert(project, valid, now)
        stored = _events_insert(project, valid, session_ids, now)
        result.accepted = len(stored)
        result.duplicates += len(valid) - len(stored)
        if stored:
            _generations_insert(project, stored, session_ids, now)
            _link_late_arrivals(project, stored)
            result.session_ids = _sessions_touch(
                stored, session_ids, also=_generation_sessions(project, stored)
            )
            transaction.on_commit(derivation_schedule)
    return result


def _check_type_allowed(raw: Any, allowed_types: Collection[str]) -> None:
    """Refuses, naming `type`, an event of a known type the key may not send (before the
    other fields are checked, so that is the error the sender reads)."""
    type_ = raw.get("type") if isinstance(raw, dict) else None
    if type_ in Event.Type.values and type_ not in allowed_types:
        raise EventInvalid(
            {
                "type": f"A publishable (browser) key cannot send '{type_}' events; send "
                "them from your server with a secret key."
            }
        )


def _sessions_upsert(project: Project, events: list[ValidEvent], now: datetime) -> dict[str, int]:
    spans: dict[str, tuple[datetime, datetime, str]] = {}
    for event in events:
        first, last, user = spans.get(event.session_ref, (event.timestamp, event.timestamp, ""))
        spans[event.session_ref] = (
            min(first, event.timestamp),
            max(last, event.timestamp),
            user or event.user_ref,
        )
    new_sessions = [
        Session(
            project=project,
            external_id=ref,
            user_ref=user,
            first_event_at=first,
            last_event_at=last,
            created_at=now,
        )
        for ref, (first, last, user) in sorted(spans.items())
    ]
    insert_ignoring_conflicts(
        Session, new_sessions, unique_fields=["project", "external_id"], returning=["id"]
    )
    return dict(
        Session.objects.filter(project=project, external_id__in=spans).values_list(
            "external_id", "id"
        )
    )


def _events_insert(
    project: Project, events: list[ValidEvent], session_ids: dict[str, int], now: datetime
) -> list[ValidEvent]:
    rows = [
        Event(
            project=project,
            client_id=event.client_id,
            type=event.type,
            timestamp=event.timestamp,
            received_at=now,
            session_id=session_ids[event.session_ref],
            generation_ref=event.generation_ref,
            user_ref=event.user_ref,
            payload=event.payload,
        )
        for event in sorted(events, key=lambda e: e.client_id)
    ]
    inserted = {
        client_id
        for (client_id,) in insert_ignoring_conflicts(
            Event, rows, unique_fields=["project", "client_id"], returning=["client_id"]
        )
    }
    return [event for event in events if event.client_id in inserted]


def _generations_insert(
    project: Project, events: list[ValidEvent], session_ids: dict[str, int], now: datetime
) -> None:
    # The first generation event for an id wins; a later one stays in the log only.
    by_ref: dict[str, ValidEvent] = {}
    for event in events:
        if event.type == Event.Type.GENERATION:
            by_ref.setdefault(event.generation_ref, event)
    rows = [
        Generation(
            project=project,
            session_id=session_ids[event.session_ref],
            external_id=ref,
            input=event.payload["input"],
            output=event.payload["output"],
            model=event.payload["model"],
            replaces_ref=event.payload["replaces"] or "",
            metadata=event.payload["metadata"],
            created_at=event.timestamp,
            received_at=now,
        )
        for ref, event in sorted(by_ref.items())
    ]
    insert_ignoring_conflicts(
        Generation, rows, unique_fields=["project", "external_id"], returning=["id"]
    )


def _link_late_arrivals(project: Project, events: list[ValidEvent]) -> None:
    """Link events and `replaces` that name generations now known: this batch's and earlier."""
    refs = {event.generation_ref for event in events if event.generation_ref}
    replaced = {
        event.payload["replaces"]
        for event in events
        if event.type == Event.Type.GENERATION and event.payload["replaces"]
    }
    generation_by_ref = Generation.objects.filter(
        project=project, external_id=OuterRef("generation_ref")
    ).values("pk")[:1]
    Event.objects.filter(project=project, generation__isnull=True, generation_ref__in=refs).exclude(
        generation_ref=""
    ).update(generation=Subquery(generation_by_ref))
    replaced_by_ref = Generation.objects.filter(
        project=project, external_id=OuterRef("replaces_ref")
    ).values("pk")[:1]
    Generation.objects.filter(
        project=project, replaces__isnull=True, replaces_ref__in=refs | replaced
    ).exclude(replaces_ref="").update(replaces=Subquery(replaced_by_ref))


def _generation_sessions(project: Project, events: list[ValidEvent]) -> set[int]:
    """Sessions holding the generations that this batch's actions name, wherever the actions
    were sent: a user who comes back in a new session still acts on the old generation, and
    that generation's session is derived with the action (`feedback.labelling`). One indexed
    lookup (`generation_unique_ref`); generations not arrived yet are found when they arrive,
    since their own event touches their session."""
    refs = {
        event.generation_ref
        for event in events
        if event.generation_ref and event.type != Event.Type.GENERATION
    }
    if not refs:
        return set()
    return set(
        Generation.objects.filter(project=project, external_id__in=refs).values_list(
            "session_id", flat=True
        )
    )


def _sessions_touch(
    events: list[ValidEvent], session_ids: dict[str, int], *, also: Iterable[int] = ()
) -> list[int]:
    """Widen each touched session's activity span and mark it, and the sessions in `also`
    (whose generations got actions sent elsewhere; their span is theirs and stays), for
    derivation, in one UPDATE."""
    spans: dict[int, tuple[datetime, datetime]] = {}
    for event in events:
        sid = session_ids[event.session_ref]
        first, last = spans.get(sid, (event.timestamp, event.timestamp))
        spans[sid] = (min(first, event.timestamp), max(last, event.timestamp))
    ids = sorted(spans.keys() | set(also))
    output = DateTimeField()
    # SQLite's two-argument MIN/MAX give NULL for a NULL argument, so a session without a
    # span of its own here keeps its value through the CASE default.
    Session.objects.filter(pk__in=ids).update(
        changes=F("changes") + 1,
        first_event_at=Least(
            "first_event_at",
            Case(
                *(When(pk=i, then=Value(first)) for i, (first, _) in sorted(spans.items())),
                default=F("first_event_at"),
                output_field=output,
            ),
        ),
        last_event_at=Greatest(
            "last_event_at",
            Case(
                *(When(pk=i, then=Value(last)) for i, (_, last) in sorted(spans.items())),
                default=F("last_event_at"),
                output_field=output,
            ),
        ),
    )
    return ids


def labels_set_review_outcome(*, outcomes: dict[int, tuple[str, str]]) -> int:
    """Record review's verdict on labels: {label id: (outcome, note)}, outcome one of
    accepted / rejected / excluded, or "" for none yet. Only rows that change are written."""
    if not outcomes:
        return 0
    labels = [
        label
        for label in Label.objects.filter(pk__in=list(outcomes)).only(
            "id", "review_outcome", "review_note"
        )
        if (label.review_outcome, label.review_note) != outcomes[label.pk]
    ]
    for label in labels:
        label.review_outcome, label.review_note = outcomes[label.pk]
    return update_rows(Label, labels, ["review_outcome", "review_note"])
