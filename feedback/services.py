"""Writes of the feedback app. Each function owns its transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, DateTimeField, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from core.bulk import insert_ignoring_conflicts, update_rows
from core.jsontext import dumps_text
from core.statements import binding_cursor
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

    if connection.vendor == "postgresql":
        session_ids = _sessions_create_apart(project, valid, now)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            stored, also = _store_postgresql(project, valid, session_ids, now)
        else:
            stored, session_ids, also = _store_portable(project, valid, now)
        result.accepted = len(stored)
        result.duplicates += len(valid) - len(stored)
        if stored:
            result.session_ids = _sessions_touch(stored, session_ids, also=also)
            transaction.on_commit(derivation_schedule)
    return result


def _store_portable(
    project: Project, events: list[ValidEvent], now: datetime
) -> tuple[list[ValidEvent], dict[str, int], set[int]]:
    """Store the batch with the ORM (SQLite): its sessions, the events new to the project,
    their generations, and the links that generations arriving now complete. Returns the
    stored events, the session ids by ref and the sessions of the generations they name."""
    session_ids = _sessions_upsert(project, events, now)
    stored = _events_insert(project, events, session_ids, now)
    if stored:
        _generations_insert(project, stored, session_ids, now)
        _link_late_arrivals(project, stored)
    return stored, session_ids, _generation_sessions(project, stored)


def _sessions_create_apart(
    project: Project, events: list[ValidEvent], now: datetime
) -> dict[str, int]:
    """The batch's sessions, created if missing in a transaction of their own.

    A batch inserting a session waits for any other batch inserting the same session to
    commit; consecutive batches share sessions, so in the batch's transaction that wait
    would last a whole batch and serialise concurrent requests. Committed apart it lasts
    one short statement. New sessions are not pending derivation (changes equals
    derived_changes) until the batch's touch marks them, so a session whose batch then
    fails stays empty and is never derived. Its commit need not wait for the disk: the
    batch's own commit, later in the log, flushes it, and without that the session is
    only an empty one lost.
    """
    outermost = not connection.in_atomic_block  # else SET LOCAL would outlive this block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        return _sessions_upsert_postgresql(project, events, now)


def _store_postgresql(
    project: Project, events: list[ValidEvent], session_ids: dict[str, int], now: datetime
) -> tuple[list[ValidEvent], set[int]]:
    """`_store_portable` in a fixed number of statements whatever the batch size: no SQL
    compiled per row, no model instances. The events go by COPY (the fastest way in from a
    client) into a temporary staging table, kept per connection and emptied at commit, from
    which one INSERT ... SELECT per table stores them.

    Generations are inserted before their events, so an event is linked to its generation
    as it is stored rather than by an UPDATE after (which would write every such event
    twice). A generation comes from the first generation event for its id that is new to
    the project, as in `_generations_insert`. Each table is written in the order of its
    unique key, so identical batches racing take their locks in the same order.
    """
    by_id = {event.client_id: event for event in events}
    params: dict[str, Any] = {"project": project.pk, "now": now}
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE TEMP TABLE IF NOT EXISTS "gleaner_ingest_staging" (ord integer NOT NULL, '
            "client_id text NOT NULL, type text NOT NULL, timestamp timestamptz NOT NULL, "
            "session_id bigint NOT NULL, generation_ref text NOT NULL, user_ref text NOT "
            "NULL, payload jsonb NOT NULL) ON COMMIT DELETE ROWS"
            # A third of the generation events are long enough to be compressed, in the
            # staging table, the log and the generation (its input): lz4 costs a fraction
            # of PostgreSQL's default pglz, and the values read the same.
            + ("; SET LOCAL default_toast_compression = lz4" if _server_has_lz4() else "")
        )
        with (
            connection.wrap_database_errors,
            cursor.copy(
                'COPY "gleaner_ingest_staging" (ord, client_id, type, timestamp, session_id, '
                "generation_ref, user_ref, payload) FROM STDIN"
            ) as copy,
        ):
            for ord_, event in enumerate(events):
                copy.write_row(
                    (
                        ord_,
                        event.client_id,
                        event.type,
                        event.timestamp,
                        session_ids[event.session_ref],
                        event.generation_ref,
                        event.user_ref,
                        dumps_text(event.payload),
                    )
                )
        # Generations of the generation events not stored before (the first of the batch
        # for each id), each linked to what it replaces if that is stored already. Lookups
        # are scalar subqueries, one unique-index probe per row: a join would be planned
        # from the project's row estimate, which is ~1 for a project new since the last
        # ANALYZE, and then read all its rows per batch.
        cursor.execute(
            'INSERT INTO "feedback_generation" (project_id, session_id, external_id, input, '
            "output, model, replaces_id, replaces_ref, metadata, signals, created_at, "
            "received_at) "
            "SELECT DISTINCT ON (s.generation_ref) %(project)s, s.session_id, "
            "s.generation_ref, s.payload -> 'input', s.payload ->> 'output', "
            "s.payload ->> 'model', (SELECT r.id FROM \"feedback_generation\" r "
            "WHERE r.project_id = %(project)s AND r.external_id = s.payload ->> 'replaces'), "
            "coalesce(s.payload ->> 'replaces', ''), s.payload -> 'metadata', '{}', "
            's.timestamp, %(now)s FROM "gleaner_ingest_staging" s '
            "WHERE s.type = 'generation' AND (SELECT e.id FROM \"feedback_event\" e "
            "WHERE e.project_id = %(project)s AND e.client_id = s.client_id) IS NULL "
            "ORDER BY s.generation_ref, s.ord "
            "ON CONFLICT (project_id, external_id) DO NOTHING RETURNING external_id",
            params,
        )
        created = [ref for (ref,) in cursor.fetchall()]
        # The events, linked to their generations; for each stored one, the session of
        # the generation it names.
        cursor.execute(
            'WITH stored AS (INSERT INTO "feedback_event" (project_id, client_id, type, '
            "timestamp, received_at, session_id, generation_id, generation_ref, user_ref, "
            "payload) "
            "SELECT %(project)s, s.client_id, s.type, s.timestamp, %(now)s, s.session_id, "
            '(SELECT g.id FROM "feedback_generation" g WHERE g.project_id = %(project)s '
            "AND g.external_id = s.generation_ref), s.generation_ref, s.user_ref, s.payload "
            'FROM "gleaner_ingest_staging" s ORDER BY s.client_id '
            "ON CONFLICT (project_id, client_id) DO NOTHING "
            "RETURNING client_id, generation_id) "
            'SELECT stored.client_id, (SELECT g.session_id FROM "feedback_generation" g '
            "WHERE g.id = stored.generation_id) FROM stored",
            params,
        )
        rows = cursor.fetchall()
        if connection.savepoint_ids:
            # Inside an outer transaction (a test's), commit does not come to empty it.
            cursor.execute('DELETE FROM "gleaner_ingest_staging"')
        stored = [by_id[client_id] for client_id, _ in rows]
        also = {
            session_id
            for client_id, session_id in rows
            if session_id is not None and by_id[client_id].type != Event.Type.GENERATION
        }
        created = _generations_unstarted_drop(project, created, stored, cursor)
        if created:
            # Events and generations stored before, waiting for a generation stored now.
            params["created"] = created
            cursor.execute(
                'UPDATE "feedback_event" e SET generation_id = (SELECT g.id '
                'FROM "feedback_generation" g WHERE g.project_id = %(project)s '
                "AND g.external_id = e.generation_ref) "
                "WHERE e.project_id = %(project)s AND e.generation_id IS NULL "
                "AND e.generation_ref <> '' AND e.generation_ref = ANY(%(created)s)",
                params,
            )
            cursor.execute(
                'UPDATE "feedback_generation" g SET replaces_id = (SELECT r.id '
                'FROM "feedback_generation" r WHERE r.project_id = %(project)s '
                "AND r.external_id = g.replaces_ref) "
                "WHERE g.project_id = %(project)s AND g.replaces_id IS NULL "
                "AND g.replaces_ref <> '' AND g.replaces_ref = ANY(%(created)s)",
                params,
            )
    return stored, also


@cache
def _server_has_lz4() -> bool:
    """Whether the database server can compress with lz4 (PostgreSQL 14 and later, when
    built with it). Asked once per process."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def _generations_unstarted_drop(
    project: Project, created: list[str], stored: list[ValidEvent], cursor: Any
) -> list[str]:
    """`created` less the generations whose generation event turned out not to be new.

    Only a race does that: another batch stored an event with the same id but another
    generation id between this batch's check and its insert. The generation goes again
    (the log has no event for it) and the events of this batch that name it wait,
    unlinked, like any early event."""
    started = {e.generation_ref for e in stored if e.type == Event.Type.GENERATION}
    unstarted = [ref for ref in created if ref not in started]
    if not unstarted:
        return created
    params: dict[str, Any] = {"project": project.pk, "refs": unstarted}
    cursor.execute(
        'UPDATE "feedback_event" SET generation_id = NULL WHERE generation_id IN (SELECT id '
        'FROM "feedback_generation" WHERE project_id = %(project)s AND external_id = '
        "ANY(%(refs)s))",
        params,
    )
    cursor.execute(
        'DELETE FROM "feedback_generation" WHERE project_id = %(project)s AND external_id = '
        "ANY(%(refs)s)",
        params,
    )
    return [ref for ref in created if ref in started]


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
    spans = _session_spans(events)
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


def _sessions_upsert_postgresql(
    project: Project, events: list[ValidEvent], now: datetime
) -> dict[str, int]:
    """`_sessions_upsert` in two statements: insert the sessions not stored yet, not pending
    derivation (changes = derived_changes = 0) until the batch's touch marks them, then read
    every id (a second statement sees the sessions a racing batch just committed)."""
    spans = _session_spans(events)
    refs = sorted(spans)
    new: dict[str, Any] = {
        "project": project.pk,
        "now": now,
        "refs": refs,
        "users": [spans[ref][2] for ref in refs],
        "firsts": [spans[ref][0] for ref in refs],
        "lasts": [spans[ref][1] for ref in refs],
        "outcome": Session.Outcome.OPEN,
    }
    # Bound on the server, arrays in binary (core.statements.binding_cursor): quoting a
    # batch's hundred-odd refs and times into the statement cost more than the statement.
    with binding_cursor() as cursor:
        cursor.execute(
            'INSERT INTO "feedback_session" (project_id, external_id, user_ref, outcome, '
            "outcome_signal, retries, first_event_at, last_event_at, created_at, changes, "
            "derived_changes, derive_failures, derive_error) "
            "SELECT %(project)s::int8, ref, user_ref, %(outcome)s::text, '', 0, first, last, "
            "%(now)s::timestamptz, 0, 0, 0, '' "
            "FROM unnest(%(refs)b::text[], %(users)b::text[], %(firsts)b::timestamptz[], "
            "%(lasts)b::timestamptz[]) AS new (ref, user_ref, first, last) "
            "ORDER BY ref ON CONFLICT (project_id, external_id) DO NOTHING",
            new,
        )
        cursor.execute(
            'SELECT external_id, id FROM "feedback_session" WHERE project_id = %s::int8 '
            "AND external_id = ANY(%b::text[])",
            [project.pk, refs],
        )
        return dict(cursor.fetchall())


def _session_spans(events: list[ValidEvent]) -> dict[str, tuple[datetime, datetime, str]]:
    """Per session ref: the first and last event time and the first user ref given."""
    spans: dict[str, tuple[datetime, datetime, str]] = {}
    for event in events:
        first, last, user = spans.get(event.session_ref, (event.timestamp, event.timestamp, ""))
        spans[event.session_ref] = (
            min(first, event.timestamp),
            max(last, event.timestamp),
            user or event.user_ref,
        )
    return spans


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
    if connection.vendor == "postgresql":
        # One statement whatever the number of sessions (GREATEST and LEAST skip NULLs).
        with binding_cursor() as cursor:
            cursor.execute(
                'UPDATE "feedback_session" s SET changes = s.changes + 1, '
                "first_event_at = LEAST(s.first_event_at, v.first), "
                "last_event_at = GREATEST(s.last_event_at, v.last) "
                "FROM unnest(%b::bigint[], %b::timestamptz[], %b::timestamptz[]) "
                "AS v (id, first, last) WHERE s.id = v.id AND s.id = ANY(%b::bigint[])",
                [
                    ids,
                    [spans[i][0] if i in spans else None for i in ids],
                    [spans[i][1] if i in spans else None for i in ids],
                    ids,
                ],
            )
        return ids
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
