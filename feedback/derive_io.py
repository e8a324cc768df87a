"""Derivation's reads and writes, one statement per table per chunk of sessions.

`feedback.labelling` decides what to derive and in which transaction; this module only
moves rows. Reads return plain tuples (no model instances). On PostgreSQL every write is a
single statement over `unnest()` of one array per column, whatever the chunk's size: the
statement's text depends only on the model, so compiling it costs nothing per row, and the
database does per-row work it is good at. Other databases (SQLite in development and
tests) take the ORM's bulk paths, which write the same values.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from itertools import chain
from typing import Any, NamedTuple

from django.db import connection, models
from django.db.models import F, QuerySet

from core.bulk import update_rows
from core.jsontext import dumps_text, loads_text
from core.statements import binding_cursor
from feedback.derivation import EventRecord
from feedback.models import (
    DWELL_BINS,
    SIGNAL_COUNTS,
    SIGNAL_LABEL_BITS,
    SIGNAL_LABEL_SHIFT,
    SIGNAL_RULES,
    Event,
    Generation,
    Label,
    RoutingPolicy,
    Session,
    SignalContribution,
    SignalRollup,
)

EVENT_COLUMNS = ("client_id", "type", "timestamp", "generation_ref", "payload")


class GenerationRow(NamedTuple):
    id: int
    external_id: str
    input: list[dict[str, Any]]
    output: str
    model: str
    replaces_ref: str
    created_at: datetime
    signals: dict[str, Any] | str  # as stored; on PostgreSQL the jsonb's text, undecoded
    # The metadata values of the project's feature key and of `prompt_template`, as text
    # ("" when missing; feedback/signals.py `group_value`).
    feature: str
    template: str


class SessionRow(NamedTuple):
    """What derivation writes back on a session."""

    id: int
    outcome: str
    outcome_signal: str
    retries: int
    derived_changes: int


# Label columns derivation writes, in the order of `LabelRow`; on a conflict with a label
# of the same (session, key) all but project and session are overwritten (review's
# columns, review_outcome and review_note, never are).
LABEL_COLUMNS = (
    "project",
    "session",
    "key",
    "generation",
    "other_generation",
    "kind",
    "source",
    "rule",
    "prompt",
    "chosen",
    "rejected",
    "completion",
    "label",
    "confidence",
    "rule_confidence",
    "weight",
    "evidence",
    "needs_review",
    "review_reason",
    "active",
    "model",
    "occurred_at",
    "derived_at",
)
LABEL_UNIQUE = ("session", "key")
LABEL_UPDATED = tuple(name for name in LABEL_COLUMNS if name not in ("project", "session", "key"))
LABEL_JSON = frozenset({"prompt", "evidence"})
LABEL_FLOATS = frozenset({"confidence", "rule_confidence", "weight"})


class LabelRow(NamedTuple):
    project_id: int
    session_id: int
    key: str
    generation_id: int
    other_generation_id: int | None
    kind: str
    source: str
    rule: str
    prompt: list[dict[str, Any]]
    chosen: str
    rejected: str
    completion: str
    label: bool | None
    confidence: float
    rule_confidence: float | None
    weight: float
    evidence: dict[str, Any]
    needs_review: bool
    review_reason: str
    active: bool
    model: str
    occurred_at: datetime
    derived_at: datetime


def _postgres() -> bool:
    return connection.vendor == "postgresql"


_binding_cursor = binding_cursor  # the name this module's callers and tests use


def transaction_settings() -> None:
    """Set what suits derivation for the rest of this transaction (`set_config(..., true)`,
    as SET LOCAL), in one statement; nothing to do on other databases than PostgreSQL.

    - No parallel query: a chunk's reads are index lookups of a few hundred sessions, where
      PostgreSQL would start a parallel worker for the events sent elsewhere, taking 7 ms
      to start for 3 ms of work (and a core the other connection could use).
    - lz4 compression rather than PostgreSQL's default pglz, where the server has it:
      labels repeat their prompt and answers, and nearly half of them are long enough to
      be compressed; lz4 makes their insert about a fifth faster. Readers see the same
      values (each compressed value names its method).
    """
    if not _postgres():
        return
    settings = ["set_config('max_parallel_workers_per_gather', '0', true)"]
    if _has_lz4():
        settings.append("set_config('default_toast_compression', 'lz4', true)")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(settings)}")


@cache
def _has_lz4() -> bool:
    """Whether the server was built with lz4 (PostgreSQL 14 and later can be)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def generations_of(session_ids: list[int]) -> dict[int, list[GenerationRow]]:
    """Every generation of these sessions, by session id."""
    by_session: dict[int, list[GenerationRow]] = defaultdict(list)
    if not _postgres():
        for session_id, *row in _generations_portable(session_ids):
            by_session[session_id].append(GenerationRow(*row))
        return by_session
    with _binding_cursor() as cursor:
        cursor.execute(_generations_sql(), [session_ids])
        rows = cursor.fetchall()
    # jsonb comes as text: `input` decoded as JSONField would; `signals` left as text
    # (`signals_changed` reads it only where it must).
    loads = loads_text
    for session_id, pk, external_id, input_, *rest in rows:
        if isinstance(input_, str):
            input_ = loads(input_)
        by_session[session_id].append(GenerationRow(pk, external_id, input_, *rest))
    return by_session


def _generations_portable(session_ids: list[int]) -> list[tuple]:
    """`generations_of`'s rows through the ORM, the metadata values picked in Python."""
    keys = dict(
        RoutingPolicy.objects.filter(project__sessions__id__in=session_ids)
        .distinct()
        .values_list("project_id", "quality_feature_key")
    )
    rows = []
    for *row, project_id, metadata in Generation.objects.filter(
        session_id__in=session_ids
    ).values_list(*_GENERATION_COLUMNS, "project_id", "metadata"):
        metadata = metadata if isinstance(metadata, dict) else {}
        feature = metadata.get(keys.get(project_id, "feature"))
        rows.append((*row, group_value(feature), group_value(metadata.get(TEMPLATE_KEY))))
    return rows


TEMPLATE_KEY = "prompt_template"  # names a generation's prompt pattern (feedback/signals.py)
GROUP_MAX = 200  # characters kept of a group key (the rollup columns' length)


def group_value(value: Any) -> str:
    """A metadata value as PostgreSQL's `->>` gives it: a string as is, JSON text
    otherwise, "" for missing or null; at most GROUP_MAX characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    return value[:GROUP_MAX]


def events_of(session_ids: list[int]) -> dict[int, list[EventRecord]]:
    """The events derivation reads for these sessions, by session id: each session's own,
    and the actions on its generations sent in another session (the user came back
    later, `events_sent_elsewhere`). Not `generation` events: the rules ignore them (the
    generations are read apart), and their payloads, which repeat each prompt and output,
    are the largest of the log."""
    by_session: dict[int, list[EventRecord]] = defaultdict(list)
    if _postgres():
        # Both kinds in one statement; jsonb comes as text, decoded as JSONField would.
        with _binding_cursor() as cursor:
            cursor.execute(_events_sql(), [session_ids, session_ids])
            rows: Iterable[tuple] = cursor.fetchall()
        loads = loads_text
        for session_id, client_id, type_, timestamp, ref, payload in rows:
            if isinstance(payload, str):
                payload = loads(payload)
            by_session[session_id].append(
                EventRecord(client_id, type_, timestamp, ref or None, payload)
            )
        return by_session
    rows = chain(
        Event.objects.filter(session_id__in=session_ids)
        .exclude(type=Event.Type.GENERATION)
        .values_list("session_id", *EVENT_COLUMNS),
        events_sent_elsewhere(session_ids),
    )
    for session_id, client_id, type_, timestamp, ref, payload in rows:
        by_session[session_id].append(
            EventRecord(client_id, type_, timestamp, ref or None, payload)
        )
    return by_session


_GENERATION_COLUMNS = (
    "session_id",
    "id",
    "external_id",
    "input",
    "output",
    "model",
    "replaces_ref",
    "created_at",
    "signals",
)


@cache
def _generations_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"SELECT {', '.join('g.' + quote(c) for c in _GENERATION_COLUMNS)}, "  # noqa: S608 - names from the model
        f"left(coalesce(g.metadata ->> p.quality_feature_key, ''), {GROUP_MAX}), "
        f"left(coalesce(g.metadata ->> '{TEMPLATE_KEY}', ''), {GROUP_MAX}) "
        f"FROM {quote(Generation._meta.db_table)} AS g "
        f"LEFT JOIN {quote(RoutingPolicy._meta.db_table)} AS p ON p.project_id = g.project_id "
        "WHERE g.session_id = ANY(%b::bigint[])"
    )


@cache
def _events_sql() -> str:
    """The events `events_of` reads, the ids as one array (given twice): the sessions' own,
    then the actions on their generations sent in another session (`events_sent_elsewhere`;
    session_id is never null)."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in EVENT_COLUMNS)
    table = quote(Event._meta.db_table)
    return (
        f"SELECT session_id, {columns} FROM {table} "  # noqa: S608 - names from the model
        f"WHERE session_id = ANY(%b::bigint[]) AND type <> '{Event.Type.GENERATION}' "
        f"UNION ALL SELECT g.session_id, {', '.join(f'e.{quote(c)}' for c in EVENT_COLUMNS)} "
        f"FROM {table} AS e JOIN {quote(Generation._meta.db_table)} AS g "
        "ON g.id = e.generation_id "
        "WHERE g.session_id = ANY(%b::bigint[]) AND e.session_id <> g.session_id "
        f"AND e.type NOT IN ('{Event.Type.GENERATION}', '{Event.Type.SESSION_OUTCOME}')"
    )


def events_sent_elsewhere(session_ids: list[int]) -> QuerySet[Event, tuple]:
    """Actions naming a generation of these sessions but sent in another session (the user
    came back later), as (generation's session id, client id, type, timestamp, generation
    ref, payload). They are derived with the generation's session; in their own session
    they name no generation of its own and are ignored there. Index-driven: the sessions'
    generations (`generation_by_session`), then each one's events (the generation FK's
    index), a few probes per generation and no scan of the event table."""
    return (
        Event.objects.filter(generation__session_id__in=session_ids)
        .exclude(session_id=F("generation__session_id"))
        .exclude(type__in=[Event.Type.GENERATION, Event.Type.SESSION_OUTCOME])
        .values_list("generation__session_id", *EVENT_COLUMNS)
    )


@cache
def _column(model: type[models.Model], name: str) -> tuple[str, str]:
    """The quoted column of field `name` and the type of its array. Text for a varchar(n):
    an explicit cast to varchar(n) would cut a longer value silently, where assigning the
    text to the column raises, as the ORM's write would."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column  # noqa: S101 - names are ours
    db_type = field.db_type(connection) or ""
    if db_type.startswith("varchar"):
        db_type = "text"
    return connection.ops.quote_name(field.column), db_type


def _unnest(model: type[models.Model], names: Sequence[str]) -> str:
    """`unnest(%b::type[], ...) AS v(column, ...)`: one array parameter per column."""
    columns = [_column(model, name) for name in names]
    arrays = ", ".join(f"%b::{db_type}[]" for _, db_type in columns)
    return f"unnest({arrays}) AS v({', '.join(column for column, _ in columns)})"


def sessions_record(rows: list[SessionRow], *, now: datetime, recovered: list[int]) -> None:
    """Write each session's derived fields and `derived_at`; clear the failure marks of
    the `recovered` ones (they had failed before)."""
    if not rows:
        return
    if not _postgres():
        sessions = [
            Session(
                pk=row.id,
                outcome=row.outcome,
                outcome_signal=row.outcome_signal,
                retries=row.retries,
                derived_changes=row.derived_changes,
                derived_at=now,
            )
            for row in rows
        ]
        update_rows(
            Session,
            sessions,
            ["outcome", "outcome_signal", "retries", "derived_changes", "derived_at"],
        )
        if recovered:
            Session.objects.filter(pk__in=recovered).update(
                derive_failures=0, derive_error="", derive_retry_at=None
            )
        return
    names = ("id", "outcome", "outcome_signal", "retries", "derived_changes")
    table = connection.ops.quote_name(Session._meta.db_table)
    # A session that never failed has no marks: clearing them for every session is the
    # same write as clearing them for the recovered ones, in the same statement.
    sql = (
        f"UPDATE {table} AS t SET outcome = v.outcome, outcome_signal = v.outcome_signal, "  # noqa: S608 - names from the model
        "retries = v.retries, derived_changes = v.derived_changes, derived_at = %s, "
        "derive_failures = 0, derive_error = '', derive_retry_at = NULL "
        f"FROM {_unnest(Session, names)} WHERE t.id = v.id"
    )
    with _binding_cursor() as cursor:
        cursor.execute(sql, [now, *(list(column) for column in zip(*rows, strict=True))])


def signals_changed(stored: dict[str, Any] | str, signals: dict[str, Any]) -> bool:
    """Whether `signals` differ from the `stored` ones (a `GenerationRow.signals`): another
    key, value or JSON type (1 and 1.0 and true are equal in Python, not in the column).
    Re-deriving a session mostly finds its generations' signals as they were; those rows
    are then not rewritten."""
    if isinstance(stored, str):
        if stored == "{}":
            return bool(signals)
        stored = loads_text(stored)
    assert isinstance(stored, dict)  # noqa: S101 - a JSONField of a dict
    return stored.keys() != signals.keys() or any(
        type(value) is not type(stored[key]) or value != stored[key]
        for key, value in signals.items()
    )


def generation_signals_write(rows: list[tuple[int, dict[str, Any]]]) -> None:
    """Write `signals` of generations, given as (generation id, signals)."""
    if not rows:
        return
    if not _postgres():
        update_rows(
            Generation, [Generation(pk=pk, signals=signals) for pk, signals in rows], ["signals"]
        )
        return
    table = connection.ops.quote_name(Generation._meta.db_table)
    sql = (
        f"UPDATE {table} AS t SET signals = v.signals "  # noqa: S608 - names from the model
        f"FROM {_unnest(Generation, ('id', 'signals'))} WHERE t.id = v.id"
    )
    with _binding_cursor() as cursor:
        cursor.execute(sql, [[pk for pk, _ in rows], [dumps_text(signals) for _, signals in rows]])


def labels_upsert(rows: list[LabelRow]) -> list[int]:
    """Insert the labels, or overwrite derivation's columns of the label already stored
    under the same (session, key); the ids of all of them."""
    if not rows:
        return []
    if not _postgres():
        labels = [
            Label(**{_attname(name): value for name, value in zip(LABEL_COLUMNS, row, strict=True)})
            for row in rows
        ]
        stored = Label.objects.bulk_create(
            labels,
            batch_size=500,
            update_conflicts=True,
            unique_fields=list(LABEL_UNIQUE),
            update_fields=list(LABEL_UPDATED),
        )
        return [label.pk for label in stored]
    with _binding_cursor() as cursor:
        cursor.execute(_labels_upsert_sql(), _label_arrays(rows))
        return [pk for (pk,) in cursor.fetchall()]


def _attname(name: str) -> str:
    field = Label._meta.get_field(name)
    return field.attname if isinstance(field, models.Field) else name


@cache
def _labels_upsert_sql() -> str:
    table = connection.ops.quote_name(Label._meta.db_table)
    columns = ", ".join(_column(Label, name)[0] for name in LABEL_COLUMNS)
    unique = ", ".join(_column(Label, name)[0] for name in LABEL_UNIQUE)
    updates = ", ".join(
        f"{column} = EXCLUDED.{column}" for column, _ in (_column(Label, n) for n in LABEL_UPDATED)
    )
    # Review's columns (review_outcome, review_note) start empty, as the model's defaults.
    return (
        f"INSERT INTO {table} ({columns}, review_outcome, review_note) "  # noqa: S608 - names from the model
        f"SELECT v.*, '', '' FROM {_unnest(Label, LABEL_COLUMNS)} "
        f"ON CONFLICT ({unique}) DO UPDATE SET {updates} RETURNING {table}.id"
    )


def _label_arrays(rows: list[LabelRow]) -> list[list[Any]]:
    """One list per column. JSON as text (cast to jsonb by the statement); numbers of the
    float columns as floats, since psycopg dumps a list of one Python type."""
    arrays: list[list[Any]] = []
    for name, values in zip(LABEL_COLUMNS, zip(*rows, strict=True), strict=True):
        if name in LABEL_JSON:
            arrays.append([dumps_text(value) for value in values])
        elif name in LABEL_FLOATS:
            arrays.append([None if value is None else float(value) for value in values])
        else:
            arrays.append(list(values))
    return arrays


def labels_deactivate_others(
    *, session_ids: list[int], kept: list[int], now: datetime
) -> list[int]:
    """Deactivate the active labels of these sessions that are not `kept` (the log no longer
    supports them; they leave exports but keep any review made of them); their ids."""
    if not session_ids:
        return []
    if not _postgres():
        gone = list(
            Label.objects.filter(session_id__in=session_ids, active=True)
            .exclude(pk__in=kept)
            .values_list("pk", flat=True)
        )
        if gone:
            Label.objects.filter(pk__in=gone).update(active=False, derived_at=now)
        return gone
    table = connection.ops.quote_name(Label._meta.db_table)
    with _binding_cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET active = false, derived_at = %s "  # noqa: S608 - names from the model
            "WHERE session_id = ANY(%b::bigint[]) AND active AND NOT (id = ANY(%b::bigint[])) "
            "RETURNING id",
            [now, session_ids, kept],
        )
        return [pk for (pk,) in cursor.fetchall()]


# Signal rollups (feedback/signals.py): the columns of a contribution and of a rollup row,
# in the order the rows are given.
CONTRIBUTION_FIELDS = tuple(f.name for f in SignalContribution._meta.concrete_fields)
ROLLUP_KEY_FIELDS = ("project", "dimension", "day", "group_key")
ROLLUP_VALUE_FIELDS = tuple(
    f.name
    for f in SignalRollup._meta.concrete_fields
    if not f.primary_key and f.name not in ROLLUP_KEY_FIELDS
)


def signal_contributions_of(generation_ids: list[int]) -> dict[int, tuple]:
    """The stored contributions of these generations, by generation id, each a tuple in
    CONTRIBUTION_FIELDS order."""
    if not generation_ids:
        return {}
    if _postgres():
        columns = ", ".join(_column(SignalContribution, name)[0] for name in CONTRIBUTION_FIELDS)
        sql = (
            f"SELECT {columns} FROM {connection.ops.quote_name(SignalContribution._meta.db_table)} "  # noqa: S608 - names from the model
            "WHERE generation_id = ANY(%b::bigint[])"
        )
        with _binding_cursor() as cursor:
            cursor.execute(sql, [generation_ids])
            rows = cursor.fetchall()
    else:
        rows = list(
            SignalContribution.objects.filter(generation_id__in=generation_ids).values_list(
                *(_contribution_attname(name) for name in CONTRIBUTION_FIELDS)
            )
        )
    return {row[0]: tuple(row) for row in rows}


def _contribution_attname(name: str) -> str:
    field = SignalContribution._meta.get_field(name)
    return field.attname if isinstance(field, models.Field) else name


def signal_contributions_write(rows: list[tuple]) -> None:
    """Insert or overwrite contributions (tuples in CONTRIBUTION_FIELDS order)."""
    if not rows:
        return
    if not _postgres():
        attnames = [_contribution_attname(name) for name in CONTRIBUTION_FIELDS]
        SignalContribution.objects.filter(pk__in=[row[0] for row in rows]).delete()
        SignalContribution.objects.bulk_create(
            [SignalContribution(**dict(zip(attnames, row, strict=True))) for row in rows],
            batch_size=500,
        )
        return
    with _binding_cursor() as cursor:
        cursor.execute(_contributions_upsert_sql(), [list(c) for c in zip(*rows, strict=True)])


@cache
def _contributions_upsert_sql() -> str:
    table = connection.ops.quote_name(SignalContribution._meta.db_table)
    columns = [_column(SignalContribution, name)[0] for name in CONTRIBUTION_FIELDS]
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns[1:])
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - names from the model
        f"SELECT * FROM {_unnest(SignalContribution, CONTRIBUTION_FIELDS)} "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}"
    )


def _rollup_upsert_tail() -> str:
    """`ON CONFLICT ... DO UPDATE` adding the new values to the stored ones."""
    table = connection.ops.quote_name(SignalRollup._meta.db_table)
    key = ", ".join(_column(SignalRollup, name)[0] for name in ROLLUP_KEY_FIELDS)
    adds = ", ".join(
        f"{column} = {table}.{column} + EXCLUDED.{column}"
        for column, _ in (_column(SignalRollup, name) for name in ROLLUP_VALUE_FIELDS)
    )
    return f"ON CONFLICT ({key}) DO UPDATE SET {adds}"


def _rollup_columns() -> str:
    return ", ".join(
        _column(SignalRollup, name)[0] for name in (*ROLLUP_KEY_FIELDS, *ROLLUP_VALUE_FIELDS)
    )


def signal_rollups_add(rows: list[tuple]) -> None:
    """Add rows (ROLLUP_KEY_FIELDS then ROLLUP_VALUE_FIELDS) to the rollups, creating the
    missing ones: one statement. Callers sort the rows by key, so that concurrent
    derivations lock rollup rows in one order and cannot deadlock on them."""
    if not rows:
        return
    table = connection.ops.quote_name(SignalRollup._meta.db_table)
    if not _postgres():
        placeholders = ", ".join(["%s"] * (len(ROLLUP_KEY_FIELDS) + len(ROLLUP_VALUE_FIELDS)))
        sql = (
            f"INSERT INTO {table} ({_rollup_columns()}) VALUES ({placeholders}) "  # noqa: S608 - names from the model
            f"{_rollup_upsert_tail()}"
        )
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
        return
    with _binding_cursor() as cursor:
        cursor.execute(_rollups_add_sql(), [list(c) for c in zip(*rows, strict=True)])


@cache
def _rollups_add_sql() -> str:
    table = connection.ops.quote_name(SignalRollup._meta.db_table)
    names = (*ROLLUP_KEY_FIELDS, *ROLLUP_VALUE_FIELDS)
    return (
        f"INSERT INTO {table} ({_rollup_columns()}) "  # noqa: S608 - names from the model
        f"SELECT * FROM {_unnest(SignalRollup, names)} {_rollup_upsert_tail()}"
    )


def signal_rollups_rebuild(project_id: int) -> None:
    """Replace a project's rollups by the sums of its contributions, in SQL: one DELETE,
    one INSERT ... SELECT ... GROUP BY (each dimension's groups from one scan)."""
    quote = connection.ops.quote_name
    rollups = quote(SignalRollup._meta.db_table)
    contributions = quote(SignalContribution._meta.db_table)
    group = (
        "CASE d.dimension WHEN 'model' THEN c.model WHEN 'feature' THEN c.feature "
        "ELSE c.pattern END"
    )
    # The packed counts unpacked (SignalContribution.counts), the bins counted.
    sums = ["COUNT(*)"]
    sums += [f"SUM((c.counts >> {bit}) & 1)" for bit in range(len(SIGNAL_COUNTS))]
    sums += [f"SUM(CASE WHEN c.dwell_bin = {k} THEN 1 ELSE 0 END)" for k in range(DWELL_BINS)]
    sums += [
        f"SUM((c.counts >> {SIGNAL_LABEL_SHIFT + SIGNAL_LABEL_BITS * j}) & "
        f"{2**SIGNAL_LABEL_BITS - 1})"
        for j in range(len(SIGNAL_RULES))
    ]
    assert len(sums) == len(ROLLUP_VALUE_FIELDS)  # noqa: S101 - the model's columns
    dimensions = " UNION ALL ".join(
        f"SELECT '{d}' AS dimension" for d in SignalRollup.Dimension.values
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {rollups} WHERE project_id = %s", [project_id])  # noqa: S608 - names from the model
        cursor.execute(
            f"INSERT INTO {rollups} ({_rollup_columns()}) "  # noqa: S608 - names from the model
            f"SELECT c.project_id, d.dimension, c.day, {group}, {', '.join(sums)} "
            f"FROM {contributions} AS c CROSS JOIN ({dimensions}) AS d "
            "WHERE c.project_id = %s GROUP BY c.project_id, d.dimension, c.day, 4 "
            f"ORDER BY 2, 3, 4 {_rollup_upsert_tail()}",
            [project_id],
        )
