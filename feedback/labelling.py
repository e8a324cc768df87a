"""Writes that turn the event log into signals and labels (docs/labels.md, "Signals" and
conversion"). The rules themselves are pure and live in `feedback.derivation`.

Contract: a session needs deriving while `changes > derived_changes`. Ingestion bumps
`changes`; `sessions_derive_pending` locks a chunk of such sessions, re-reads their whole
log, upserts labels by their stable key and records the `changes` it saw. Re-deriving is
idempotent and never touches `review_outcome` (owned by review).

Failures are isolated per session: a session whose derivation raises is marked
(`derive_failures`, `derive_error`, `derive_retry_at` with capped exponential backoff),
logged, left pending, and skipped until its retry time; the other sessions of the chunk
are derived all the same. A successful derivation clears the marks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import wait
from datetime import datetime, timedelta
from math import ceil
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from core.background import in_background
from core.scheduling import schedule_task
from feedback import derive_io
from feedback.derivation import GenerationRecord, GenerationSignals, Policy, derive_session
from feedback.models import RoutingPolicy, Session
from feedback.quality import Calibration, calibration_for
from feedback.signals import Contribution, contribution, pattern_of, rollups_apply
from tenancy.models import Project

logger = logging.getLogger(__name__)
DERIVE_CHUNK = 200
# A derivation task works through a backlog for this long, then hands over to a fresh one.
BACKLOG_SECONDS = 20.0
SCHEDULED_MARK = "gleaner:derive-scheduled"
# A failing session is retried after 1, 2, 4, ... minutes, at most every 6 hours.
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=6)

POLICY_FIELDS = [
    "edit_ratio_min",
    "edit_ratio_max",
    "retry_threshold",
    "confidence_threshold",
    "qa_sample_rate",
    "weight_edit",
    "weight_regenerate",
    "weight_copy_share",
    "weight_completed",
    "weight_abandoned",
    "weight_rating",
    "sends_outcome_events",
    "target_precision",
    "min_verdicts",
]


def policy_for(routing: RoutingPolicy | None, calibration: Calibration | None = None) -> Policy:
    """Derivation's policy: the project's routing policy, with people's verdicts so far."""
    if routing is None:
        return Policy()
    extra: dict[str, Any] = {}
    if calibration is not None:
        extra["verdicts"] = {key: (c.right, c.n) for key, c in calibration.cells.items()}
        extra["guarded_rules"] = calibration.guarded_rules
    return Policy(**{name: getattr(routing, name) for name in POLICY_FIELDS}, **extra)


def derivation_schedule() -> None:
    """Ask for pending sessions to be derived, at most once per debounce window.

    A burst of events for one session inside the window causes one derivation: the task
    runs at the window's end and reads everything that arrived by then. Runs after commit
    and never raises (`core.scheduling.schedule_debounced`): with Redis down the events
    stay stored and pending, and the beat sweep `derive-pending-sessions` derives them.
    In-process mode (no broker) derives at once, and there errors propagate.
    """
    from feedback.tasks import derive_pending_sessions

    schedule_task(
        derive_pending_sessions,
        mark=SCHEDULED_MARK,
        window=settings.GLEANER_DERIVE_DEBOUNCE_SECONDS,
        eager_raises=True,
    )


def derive_retry_delay(failures: int) -> timedelta:
    """Wait before retrying a session that failed `failures` times in a row (>= 1)."""
    return min(RETRY_MAX, RETRY_FIRST * 2 ** min(failures - 1, 30))


def _pending(now: datetime) -> QuerySet[Session]:
    """Sessions needing derivation whose retry time, if they failed before, has come."""
    return Session.objects.filter(
        Q(derive_retry_at__isnull=True) | Q(derive_retry_at__lte=now),
        changes__gt=F("derived_changes"),
    )


def sessions_derive_pending(*, limit: int = DERIVE_CHUNK, project: Project | None = None) -> int:
    """Derive up to `limit` pending sessions in one transaction; how many were taken
    (derived, or marked failed). `limit` taken means more may be pending.

    Fair across projects: each project with pending sessions gets an equal share of the
    chunk, lowest ids first, and shares a project cannot fill go to the others, so one
    project's backlog never starves another's new sessions.

    Rows are locked with SKIP LOCKED, so concurrent workers take disjoint chunks and
    ingestion's counter bump for a locked session waits for this commit (then the session
    is pending again and is derived once more: nothing is lost).

    The chunk is derived at once in a savepoint (the common, fast path). If that raises,
    each session is derived alone in its own savepoint and the ones that fail are marked
    for a later retry; the marks commit with the sessions that succeeded. Errors of the
    database connection itself still propagate (the marks cannot be written either), so
    the task retries the whole chunk.
    """
    now = timezone.now()
    with transaction.atomic():
        sessions = _lock_pending_fairly(limit=limit, project=project, now=now)
        if not sessions:
            return 0
        derive_io.transaction_settings()
        try:
            with transaction.atomic():
                _derive(sessions, now=now)
        except Exception as error:  # any failure falls back to one by one
            logger.info("Deriving %d sessions together failed (%r)", len(sessions), error)
            _derive_one_by_one(sessions, now=now)
    return len(sessions)


def sessions_derive_backlog(
    *, project: Project | None = None, seconds: float = BACKLOG_SECONDS
) -> tuple[int, bool]:
    """Derive pending sessions chunk after chunk (`sessions_derive_pending`) until none is
    left or `seconds` have passed; (sessions taken, whether more may be pending).

    Once the first chunk comes back full (a backlog, not a burst of a few sessions), a
    second connection derives chunks alongside this one, on a thread of its own where
    that is possible (`core.background`: PostgreSQL, outside a transaction). Each chunk is
    its own transaction on one of them, as with two workers (SKIP LOCKED gives them
    disjoint chunks), so while one waits on the database the other derives in Python:
    0.21 -> 0.29-0.32 of bench/derive.py's reference.
    """
    deadline = time.monotonic() + seconds
    taken = sessions_derive_pending(limit=DERIVE_CHUNK, project=project)
    if taken < DERIVE_CHUNK:
        return taken, False
    if time.monotonic() >= deadline:
        return taken, True
    helper = in_background(lambda: _derive_until(deadline, project))
    try:
        mine, more = _derive_until(deadline, project)
    except BaseException:
        wait([helper])  # no derivation left running behind the error this raises
        raise
    theirs, more_theirs = helper.result()
    return taken + mine + theirs, more or more_theirs


def _derive_until(deadline: float, project: Project | None) -> tuple[int, bool]:
    """Derive chunks until one comes back short (nothing more is due) or `deadline`
    passes; (sessions taken, whether more may be pending)."""
    taken = 0
    while time.monotonic() < deadline:
        done = sessions_derive_pending(limit=DERIVE_CHUNK, project=project)
        taken += done
        if done < DERIVE_CHUNK:
            return taken, False
    return taken, True


class _Pending(NamedTuple):
    """What derivation needs of a session it locked."""

    pk: int
    project_id: int
    changes: int
    timed_out_at: datetime | None
    derive_failures: int


def _lock_pending_fairly(*, limit: int, project: Project | None, now: datetime) -> list[_Pending]:
    """Lock up to `limit` due pending sessions, shared round by round across projects."""
    if project is not None:
        project_ids = [project.pk]
    else:
        due = _pending(now).filter(project=OuterRef("pk"))
        project_ids = list(
            Project.objects.filter(Exists(due)).order_by("pk").values_list("pk", flat=True)
        )
    taken: list[_Pending] = []
    after: dict[int, int] = dict.fromkeys(project_ids, 0)  # last id taken per project
    while after and len(taken) < limit:
        share = ceil((limit - len(taken)) / len(after))
        for project_id in list(after):
            room = min(share, limit - len(taken))
            if room <= 0:
                break
            chunk = [
                _Pending(*row)
                for row in _pending(now)
                .filter(project_id=project_id, id__gt=after[project_id])
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("id")
                .values_list(*_Pending._fields)[:room]
            ]
            taken.extend(chunk)
            if len(chunk) < room:
                del after[project_id]  # nothing more due there (or locked by others)
            else:
                after[project_id] = chunk[-1].pk
    return taken


def _derive_one_by_one(sessions: list[_Pending], *, now: datetime) -> None:
    failed: list[tuple[_Pending, Exception]] = []
    for session in sessions:
        try:
            with transaction.atomic():
                _derive([session], now=now)
        except Exception as exc:  # recorded on the session, see below
            failed.append((session, exc))
    for session, error in failed:
        failures = session.derive_failures + 1
        retry_at = now + derive_retry_delay(failures)
        logger.warning(
            "Deriving session %s of project %s failed (%d time(s) in a row), retry at %s: %r",
            session.pk,
            session.project_id,
            failures,
            retry_at.isoformat(),
            error,
            exc_info=error,
        )
        Session.objects.filter(pk=session.pk).update(
            derive_failures=failures,
            derive_error=f"{type(error).__name__}: {error}"[:2000],
            derive_retry_at=retry_at,
        )


def _derive(sessions: list[_Pending], *, now: datetime) -> None:
    """Derive `sessions` together: one read per table, the rules per session, one write
    per table (`feedback.derive_io`), then the labels handed to review."""
    ids = [s.pk for s in sessions]
    project_ids = {s.project_id for s in sessions}
    calibrations = calibration_for(project_ids)
    policies = {
        p.project_id: policy_for(p, calibrations.get(p.project_id))
        for p in RoutingPolicy.objects.filter(project_id__in=project_ids)
    }
    generations = derive_io.generations_of(ids)
    events = derive_io.events_of(ids)
    contributed = derive_io.signal_contributions_of(
        [g.id for gens in generations.values() for g in gens]
    )

    session_rows: list[derive_io.SessionRow] = []
    signal_rows: list[tuple[int, dict[str, Any]]] = []
    label_rows: list[derive_io.LabelRow] = []
    contributions: list[Contribution] = []
    for session in sessions:
        gens = {g.external_id: g for g in generations.get(session.pk, ())}
        result = derive_session(
            generations=[
                GenerationRecord(
                    g.external_id, g.input, g.output, g.model, g.replaces_ref or None, g.created_at
                )
                for g in gens.values()
            ],
            events=events.get(session.pk, []),
            policy=policies.get(session.project_id, Policy()),
            abandoned_by_timeout=session.timed_out_at is not None,
        )
        session_rows.append(
            derive_io.SessionRow(
                session.pk,
                result.session.outcome,
                result.session.outcome_signal or "",
                result.session.retries,
                session.changes,
            )
        )
        rules: dict[str, list[str]] = {}
        for derived in result.labels:
            rules.setdefault(derived.generation_ref, []).append(derived.rule)
        last_ref = next(reversed(result.generations), None)
        for ref, derived_signals in result.generations.items():
            signals = _stored_signals(derived_signals)
            gen = gens[ref]
            if derive_io.signals_changed(gen.signals, signals):
                signal_rows.append((gen.id, signals))
            contributions.append(
                contribution(
                    generation_id=gen.id,
                    project_id=session.project_id,
                    created_at=gen.created_at,
                    model=gen.model,
                    feature=gen.feature,
                    pattern=pattern_of(gen.input, gen.template),
                    signals=signals,
                    rules=rules.get(ref, ()),
                    last_in_session=ref == last_ref,
                    outcome=result.session.outcome,
                )
            )
        for derived in result.labels:
            subject = gens[derived.generation_ref]
            other = gens.get(derived.other_generation_ref) if derived.other_generation_ref else None
            label_rows.append(
                derive_io.LabelRow(
                    project_id=session.project_id,
                    session_id=session.pk,
                    key=derived.key,
                    generation_id=subject.id,
                    other_generation_id=other.id if other is not None else None,
                    kind=derived.kind,
                    source=derived.source,
                    rule=derived.rule,
                    prompt=derived.prompt,
                    chosen=derived.chosen or "",
                    rejected=derived.rejected or "",
                    completion=derived.completion or "",
                    label=derived.label,
                    confidence=derived.confidence,
                    rule_confidence=derived.rule_confidence,
                    weight=derived.weight,
                    evidence=derived.signals,
                    needs_review=derived.needs_review,
                    review_reason=derived.review_reason or "",
                    active=True,
                    model=subject.model,
                    occurred_at=subject.created_at,
                    derived_at=now,
                )
            )

    derive_io.sessions_record(
        session_rows, now=now, recovered=[s.pk for s in sessions if s.derive_failures]
    )
    derive_io.generation_signals_write(signal_rows)
    stored = derive_io.labels_upsert(label_rows)
    # A label the log no longer supports leaves exports but keeps any review made of it.
    gone = derive_io.labels_deactivate_others(session_ids=ids, kept=stored, now=now)
    # The signal dashboards' rollups move by what changed (feedback/signals.py).
    rollups_apply(contributed, contributions)
    # Every stored label, not only those needing review: a label whose meaning changed
    # (a late outcome) may have to leave the queue it was routed to; and every label that
    # is gone, whose items ask about something the log no longer says.
    _notify_consumers(stored + gone)


_SIGNAL_FIELDS = tuple(
    name for name in GenerationSignals.__dataclass_fields__ if name != "final_text"
)


def _stored_signals(signals: GenerationSignals) -> dict[str, Any]:
    """A generation's signals as stored: all but the final text (it lives in the log).
    Every field is a plain value, so no deep copy (`dataclasses.asdict`) is needed."""
    return {name: getattr(signals, name) for name in _SIGNAL_FIELDS}


def _notify_consumers(label_ids: list[int]) -> None:
    """Hand the labels just derived, and those just deactivated, to the apps that route them
    (settings-wired, so feedback imports nothing of review); each consumer picks those that
    concern it (`Label.active` tells the two apart). Runs inside the
    derivation transaction: routing commits or rolls back with the labels."""
    if not label_ids:
        return
    for path in settings.GLEANER_LABEL_CONSUMERS:
        import_string(path)(label_ids=label_ids)


ABANDON_CHUNK = 5000


def sessions_mark_abandoned(*, now: datetime | None = None) -> int:
    """Mark open sessions idle past their project's inactivity timeout as timed out:
    abandoned if the project always sends outcome events, else inactive (derivation, which
    the bumped `changes` schedules, decides the same from `timed_out_at`).

    Works in chunks that lock with SKIP LOCKED and never wait: a session that ingestion or
    derivation holds right now is left for the next sweep (it is being touched, so it is
    hardly idle), and the sweep can neither deadlock with them nor hold thousands of row
    locks for long.
    """
    now = now or timezone.now()
    marked = 0
    for project_id, minutes, sends_outcomes in RoutingPolicy.objects.values_list(
        "project_id", "inactivity_timeout_minutes", "sends_outcome_events"
    ):
        idle = Session.objects.filter(
            project_id=project_id,
            outcome=Session.Outcome.OPEN,
            last_event_at__lt=now - timedelta(minutes=minutes),
        )
        while True:
            with transaction.atomic():
                ids = list(
                    idle.select_for_update(skip_locked=True)
                    .order_by("id")
                    .values_list("id", flat=True)[:ABANDON_CHUNK]
                )
                if ids:
                    marked += Session.objects.filter(pk__in=ids).update(
                        outcome=Session.Outcome.ABANDONED
                        if sends_outcomes
                        else Session.Outcome.INACTIVE,
                        timed_out_at=now,
                        changes=F("changes") + 1,
                    )
            if len(ids) < ABANDON_CHUNK:
                break
    return marked


def project_rederive(*, projects: Iterable[Project]) -> int:
    """Mark every session of `projects` for derivation (after a policy change)."""
    count = Session.objects.filter(project__in=list(projects)).update(
        derived_changes=0, derive_retry_at=None
    )
    transaction.on_commit(derivation_schedule)
    return count


def sessions_retry_derivation(*, sessions: QuerySet[Session]) -> int:
    """Retry failed sessions at the next derivation instead of after their backoff (after
    fixing what made them fail); their failure count is kept until one succeeds."""
    count = sessions.filter(derive_retry_at__isnull=False).update(derive_retry_at=None)
    transaction.on_commit(derivation_schedule)
    return count
