"""Reads of the feedback app. `access_*` functions check permission or raise Http404
(projects: tenancy.access)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Case, DateTimeField, F, Prefetch, Q, When
from django.http import Http404

from feedback.models import Event, Generation, Label, Session
from tenancy.access import READ_ROLES, access_project, storable

SESSION_EVENTS_SHOWN = 1000
# A day inside datetime's range, so no timezone shift of a value read back can overflow.
READABLE_SINCE = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
READABLE_UNTIL = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


def access_session(user: User | AnonymousUser, project_slug: str, external_id: str) -> Session:
    """The session, with timestamps Python cannot hold shown as None (see `_readable`)."""
    project = access_project(user, project_slug, READ_ROLES)
    if not storable(external_id):
        raise Http404("No such session.")
    session = (
        Session.objects.filter(project=project, external_id=external_id)
        .select_related("project")
        .defer("first_event_at", "last_event_at")
        .annotate(
            readable_first_event_at=_readable("first_event_at"),
            readable_last_event_at=_readable("last_event_at"),
        )
        .first()
    )
    if session is None:
        raise Http404("No such session.")
    session.first_event_at = session.readable_first_event_at
    session.last_event_at = session.readable_last_event_at
    return session


def _readable(field: str) -> Case:
    """`field`, or None where the stored timestamp is outside what Python's datetime holds.

    Ingestion refuses such timestamps now, but rows stored before it did (a year-1 date with
    a positive offset is a BC date in PostgreSQL) must not make the whole session unreadable.
    """
    return Case(
        When(Q(**{f"{field}__lt": READABLE_SINCE}), then=None),
        When(Q(**{f"{field}__gt": READABLE_UNTIL}), then=None),
        default=F(field),
        output_field=DateTimeField(),
    )


def session_generations(session: Session) -> list[Generation]:
    """The session's generations in order, each with its labels (two queries in all)."""
    generations: list[Generation] = list(
        session.generations.order_by("created_at", "id")
        .defer("created_at")
        .annotate(readable_created_at=_readable("created_at"))
        .prefetch_related(Prefetch("labels", queryset=Label.objects.order_by("id")))
    )
    for generation in generations:
        generation.created_at = generation.readable_created_at  # type: ignore[attr-defined]  # annotated above
    return generations


def session_events(session: Session, limit: int = SESSION_EVENTS_SHOWN) -> list[Event]:
    events: list[Event] = list(
        # The order derivation uses, so "the latest edit" means the same thing in both.
        session.events.order_by("timestamp", "client_id")
        .only("client_id", "type", "received_at", "generation_ref", "payload")
        .annotate(readable_timestamp=_readable("timestamp"))[:limit]
    )
    for event in events:
        event.timestamp = event.readable_timestamp  # type: ignore[attr-defined]  # annotated above
    return events


def final_texts(generations: list[Generation], events: list[Event]) -> dict[str, str]:
    """Each generation's text after the latest edit (by timestamp), else its output."""
    texts = {generation.external_id: generation.output for generation in generations}
    for event in events:  # ordered by timestamp: the last edit wins
        if event.type == Event.Type.EDIT and event.generation_ref in texts:
            text = event.payload.get("text") if isinstance(event.payload, dict) else None
            texts[event.generation_ref] = text if isinstance(text, str) else ""
    return texts
