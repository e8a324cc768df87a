"""Agreement recomputation and the gate to the training set (DESIGN.md, "Review").

An item passes when it has the annotations it needs, its agreement on the deciding
question (the queue's first required choice question; with ratings only, each rating)
meets the queue's threshold, and the queue's alpha for that question meets the queue's
minimum. Where alpha is undefined because every answer in the queue is the same (nothing
varies, so there is nothing to correct for chance), item agreement alone decides, once
MIN_ITEMS_TO_JUDGE items are fully answered; fewer, and the queue is too small to judge
(docs/review.md). Alpha is computed and shown for every choice and rating question.
Disputed items wait for a lead's adjudication. The outcome is written back onto the item
and, through feedback's service, onto its label.

Everything is computed from plain reads, without locks; only the writes lock, in the
app's one lock order (review/claims.py): items (in id order, a chunk per short
transaction), then their labels, then the queue row for its counters. Annotators' claims
skip locked items, so the item locks are kept to milliseconds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.bulk import update_rows
from feedback.quality import calibration_forget
from feedback.services import labels_set_review_outcome
from review.agreement import (
    ONE_VALUE,
    SKEWED,
    Answers,
    alpha_from_counts,
    deciding_question,
    gated,
    item_agreement_from_counts,
)
from review.answers import rating_value
from review.models import Adjudication, AgreementSnapshot, Annotation, Item, Question, Queue

DEFAULT_ACCEPT = ("yes", "chosen")
DEFAULT_REJECT = ("no", "rejected")
SERIES_POINTS = 8
MIN_ITEMS_TO_FLAG = 5
# A queue whose answers are all alike passes items on their own agreement only from this
# many fully answered items: three unanimous items say little about a queue's reviewers.
MIN_ITEMS_TO_JUDGE = 10
TOO_FEW_ITEMS = "too few items to judge agreement"


def queue_agreement_recompute(*, queue: Queue, now: datetime | None = None) -> AgreementSnapshot:
    """Recompute alpha, item agreement, gate decisions and annotator quality for `queue`.

    Idempotent: a re-run over the same annotations writes nothing new but a snapshot.
    Reads every annotation of the queue once, as arrays.
    """
    started = time.perf_counter()
    now = now or timezone.now()
    questions = list(queue.questions.all())
    measured = gated(questions)  # alpha for every choice and rating question
    decision_question = deciding_question(questions)
    # The gate judges the question that decides (the first choice question); queues with
    # ratings only are gated on all of them.
    gate_questions = [decision_question] if decision_question else measured
    answers = _load_answers(queue, measured)
    results: dict[str, Any] = {
        "questions": {},
        "series": {},
        "annotators": {},
        "deciding_question": decision_question.key if decision_question else None,
    }
    item_rows: dict[int, dict[str, Any]] = defaultdict(dict)

    for question in measured:
        qa = answers[question.key]
        units, counts = qa.counts()
        results["questions"][question.key] = {
            **alpha_from_counts(question, counts).as_dict(),
            "complete_items": _complete_items(queue, counts),
        }
        results["series"][question.key] = _series(question, qa)
        shares = item_agreement_from_counts(question, counts, queue.agreement_tolerance)
        top = counts.argmax(axis=1) if counts.size else np.zeros(0, dtype=np.int64)
        for unit, share, code in zip(units.tolist(), shares.tolist(), top.tolist(), strict=True):
            item_rows[unit][question.key] = (share, qa.domain[code])

    if decision_question is not None:
        results["annotators"] = _annotator_quality(queue, answers[decision_question.key])
    results["items"] = _apply_gate(queue, gate_questions, decision_question, item_rows, results)

    snapshot = AgreementSnapshot.objects.create(
        queue=queue,
        computed_at=now,
        annotations=sum(len(a.items) for a in answers.values()) // max(1, len(answers)),
        seconds=round(time.perf_counter() - started, 4),
        results=results,
    )
    return snapshot


def _complete_items(queue: Queue, counts: np.ndarray) -> int:
    """Items with all the answers the queue asks for (and at least two) to one question."""
    if not counts.size:
        return 0
    return int((counts.sum(axis=1) >= max(2, queue.annotations_per_item)).sum())


@dataclass(frozen=True)
class QueueVerdict:
    """What the queue-level agreement lets through: `blocked` says why no item may pass
    (None: items are judged one by one); `unanimous` names the gated questions whose alpha
    is undefined because every answer agrees, where item agreement alone decides; `skewed`
    the ones whose low alpha comes from answers nearly all alike, passed on Gwet's AC1."""

    blocked: str | None
    unanimous: tuple[str, ...] = ()
    skewed: tuple[str, ...] = ()


def queue_verdict(
    questions: list[dict[str, Any]], *, min_alpha: float, min_items: int = MIN_ITEMS_TO_JUDGE
) -> QueueVerdict:
    """The queue-level gate over the gated questions' agreement (`alpha_from_counts` dicts
    with `complete_items`). Alpha below the minimum, or undefined for want of an item with
    two answers, blocks; alpha undefined because every answer agrees passes to item
    agreement with `min_items` fully answered items, and blocks as too few below that.
    Alpha below the minimum with answers skewed to one value (`SKEWED`) passes when Gwet's
    AC1 meets the minimum, with `min_items` fully answered items."""
    low, undefined, few, unanimous, skewed = [], [], [], [], []
    for q in questions:
        if q["alpha"] is not None:
            ac1, top = q.get("ac1"), q.get("top_share")
            passes_ac1 = ac1 is not None and ac1 >= min_alpha and (top or 0) >= SKEWED
            if q["alpha"] < min_alpha and passes_ac1 and q.get("complete_items", 0) >= min_items:
                skewed.append(q["key"])
            elif q["alpha"] < min_alpha:
                low.append(f"{q['key']} alpha {q['alpha']}")
        elif q["undefined_reason"] == ONE_VALUE:
            complete = q.get("complete_items", 0)
            if complete >= min_items:
                unanimous.append(q["key"])
            else:
                few.append(
                    f"every {q['key']} answer is the same, on {complete} fully answered"
                    f" items of the {min_items} needed"
                )
        else:
            undefined.append(f"{q['key']} alpha undefined ({q['undefined_reason']})")
    reasons = []
    if low:
        reasons.append(f"queue alpha below {min_alpha}: {', '.join(low)}")
    if undefined:
        reasons.append(f"queue alpha unknown: {', '.join(undefined)}")
    if few:
        reasons.append(f"{TOO_FEW_ITEMS}: {', '.join(few)}")
    return QueueVerdict("; ".join(reasons) or None, tuple(unanimous), tuple(skewed))


def _load_answers(queue: Queue, questions: list[Question]) -> dict[str, Answers]:
    """Each gated question's answers, read once: the database extracts the answer texts
    from the JSON so Python never decodes whole documents (a million rows a run)."""
    keys = {f"a{n}": q for n, q in enumerate(questions)}
    rows = (
        Annotation.objects.filter(item__queue=queue)
        .exclude(item__status=Item.Status.DISCARDED)
        .values_list(
            "item_id",
            "user_id",
            "created_at",
            *(KT(f"values__{q.key}") for q in keys.values()),
        )
        .iterator(chunk_size=50_000)
    )
    buckets: dict[str, list[tuple[int, int, Any, float]]] = {q.key: [] for q in questions}
    rating = [q.type == Question.Type.RATING for q in keys.values()]
    for item_id, user_id, created_at, *texts in rows:
        at = created_at.timestamp()
        for question, is_rating, text in zip(keys.values(), rating, texts, strict=True):
            if text is None:
                continue
            # PostgreSQL gives the JSON value as text; SQLite as the native value.
            value = text
            if is_rating and isinstance(text, str):
                number = rating_value(text)
                value = text if number is None else number
            buckets[question.key].append((item_id, user_id, value, at))
    return {q.key: Answers.collect(q, buckets[q.key]) for q in questions}


def _series(question: Question, qa: Answers) -> list[dict[str, Any]]:
    """Alpha over the annotations given up to each of a few evenly spaced moments."""
    if len(qa.times) == 0:
        return []
    first, last = float(qa.times.min()), float(qa.times.max())
    cuts = [last] if last == first else np.linspace(first, last, SERIES_POINTS + 1)[1:]
    points = []
    for cut in cuts:
        _, counts = qa.counts(qa.times <= cut)
        result = alpha_from_counts(question, counts)
        points.append(
            {
                "at": datetime.fromtimestamp(float(cut), tz=UTC).isoformat(),
                "alpha": result.alpha,
                "items": result.items,
            }
        )
    return points


def _annotator_quality(queue: Queue, qa: Answers) -> dict[str, Any]:
    """Per annotator: agreement with the majority (on items with 2+ answers), accuracy on
    gold items, and alpha without them (who moves the queue's alpha, and which way)."""
    if len(qa.items) == 0:
        return {}
    units, counts = qa.counts()
    unit_of = {unit: i for i, unit in enumerate(units.tolist())}
    rows = np.fromiter((unit_of[i] for i in qa.items.tolist()), dtype=np.int64, count=len(qa.items))
    pairable = counts.sum(axis=1) >= 2
    majority = counts.argmax(axis=1)
    agrees = (qa.codes == majority[rows]) & pairable[rows]
    counted = pairable[rows]

    index = {value: i for i, value in enumerate(qa.domain)}
    gold = {
        item_id: index.get((answers or {}).get(qa.question.key))
        for item_id, answers in Item.objects.filter(
            queue=queue, gold_answers__isnull=False
        ).values_list("id", "gold_answers")
    }
    names = dict(
        get_user_model().objects.filter(pk__in=set(qa.users.tolist())).values_list("id", "username")
    )
    report = {}
    for user_id in sorted(set(qa.users.tolist())):
        mine = qa.users == user_id
        compared = int(counted[mine].sum())
        majority_share = float(agrees[mine].sum()) / compared if compared else None
        gold_hits = [
            code == gold[item]
            for item, code in zip(qa.items[mine].tolist(), qa.codes[mine].tolist(), strict=True)
            if gold.get(item) is not None
        ]
        gold_share = sum(gold_hits) / len(gold_hits) if gold_hits else None
        _, without = qa.counts(~mine)
        alpha_without = alpha_from_counts(qa.question, without).alpha
        shares = [s for s in (majority_share, gold_share) if s is not None]
        report[names.get(user_id, str(user_id))] = {
            "annotations": int(mine.sum()),
            "majority_agreement": None if majority_share is None else round(majority_share, 4),
            "gold_items": len(gold_hits),
            "gold_accuracy": None if gold_share is None else round(gold_share, 4),
            "alpha_without": alpha_without,
            "flagged": compared + len(gold_hits) >= MIN_ITEMS_TO_FLAG
            and bool(shares)
            and min(shares) < queue.min_annotator_agreement,
        }
    return report


PREFERRED = {"response_1": 0, "response_2": 1}


@dataclass(frozen=True)
class GateRules:
    """What the per-item decision reads of a queue: the gated questions (`gate_keys`), the
    one whose majority decides (`decision_key`; None for queues with ratings only), and
    the thresholds."""

    annotations_per_item: int
    min_item_agreement: float
    gate_keys: tuple[str, ...]
    decision_key: str | None
    accept_answers: tuple[Any, ...] = DEFAULT_ACCEPT
    reject_answers: tuple[Any, ...] = DEFAULT_REJECT

    @classmethod
    def of(
        cls, queue: Queue, gate_questions: list[Question], decision_question: Question | None
    ) -> GateRules:
        return cls(
            annotations_per_item=queue.annotations_per_item,
            min_item_agreement=queue.min_item_agreement,
            gate_keys=tuple(q.key for q in gate_questions),
            decision_key=decision_question.key if decision_question else None,
            accept_answers=tuple(queue.accept_answers or DEFAULT_ACCEPT),
            reject_answers=tuple(queue.reject_answers or DEFAULT_REJECT),
        )


@dataclass(frozen=True)
class ItemFacts:
    """One item as the gate sees it: `answers` maps each answered gated question's key to
    (agreement share, majority answer); `adjudication` is a lead's decision, if any."""

    status: str
    annotation_count: int
    answers: Mapping[str, tuple[float, Any]] = field(default_factory=dict)
    adjudication: str | None = None


@dataclass(frozen=True)
class ItemVerdict:
    """The gate's outcome for one item: `decision` is "" while the item waits (for
    annotations or a lead); `preferred` is the response reviewers preferred (0 or 1) of
    an accepted free pair."""

    agreement: float | None
    state: str
    decision: str
    reason: str
    preferred: int | None = None


def item_verdict(item: ItemFacts, *, rules: GateRules, on_queue: QueueVerdict) -> ItemVerdict:
    """Decide one item (no database): pending until it has its annotations and is no
    longer open; agreed at or above `min_item_agreement` (then excluded if the queue is
    blocked, else decided by the majority answer to the deciding question); disputed
    below it. A lead's adjudication overrides the decision, and a discarded item is
    always excluded."""
    shares = [item.answers[key][0] for key in rules.gate_keys if key in item.answers]
    agreement = round(min(shares), 4) if shares else None
    preferred = None
    decision: str
    if item.annotation_count < rules.annotations_per_item or item.status == Item.Status.OPEN:
        state, decision, reason = Item.AgreementState.PENDING, "", "needs more annotations"
    elif agreement is not None and agreement >= rules.min_item_agreement:
        state = Item.AgreementState.AGREED
        if on_queue.blocked:
            decision, reason = Item.Decision.EXCLUDED, on_queue.blocked
        else:
            majorities = {key: value for key, (_, value) in item.answers.items()}
            decision, reason = _decide(rules, majorities)
            if on_queue.unanimous:
                reason += (
                    f" (every answer to {', '.join(on_queue.unanimous)} in the queue is the"
                    " same, so item agreement decides)"
                )
            if on_queue.skewed:
                reason += (
                    f" (answers to {', '.join(on_queue.skewed)} are nearly all alike:"
                    " alpha is low by construction, Gwet's AC1 meets the minimum)"
                )
            if decision == Item.Decision.ACCEPTED and rules.decision_key is not None:
                answer = majorities.get(rules.decision_key)
                preferred = PREFERRED.get(answer) if isinstance(answer, str) else None
    else:
        state, decision, reason = Item.AgreementState.DISPUTED, "", "disputed: for a lead"
    if item.adjudication is not None:
        verdict = item.adjudication
        decision = Item.Decision.EXCLUDED if verdict == "discarded" else verdict
        reason = f"adjudicated: {verdict}"
    if item.status == Item.Status.DISCARDED:
        decision, reason = Item.Decision.EXCLUDED, "item discarded"
    if decision != Item.Decision.ACCEPTED:
        preferred = None
    return ItemVerdict(agreement, state, decision, reason, preferred)


def _decide(rules: GateRules, majorities: dict[str, Any]) -> tuple[str, str]:
    if rules.decision_key is None:
        return Item.Decision.ACCEPTED, "reviewers agreed"
    answer = majorities.get(rules.decision_key)
    if answer in PREFERRED:  # free content: people picked one of two responses
        return Item.Decision.ACCEPTED, f"reviewers preferred {answer.replace('_', ' ')}"
    if answer in rules.accept_answers:
        return Item.Decision.ACCEPTED, f"reviewers agreed: {answer}"
    if answer in rules.reject_answers:
        return Item.Decision.REJECTED, f"reviewers agreed: {answer}"
    return Item.Decision.EXCLUDED, f"reviewers agreed on '{answer}'"


def _apply_gate(
    queue: Queue,
    gate_questions: list[Question],
    decision_question: Question | None,
    item_rows: dict[int, dict[str, Any]],
    results: dict[str, Any],
) -> dict[str, int]:
    on_queue = queue_verdict(
        [results["questions"][q.key] for q in gate_questions], min_alpha=queue.min_alpha
    )
    rules = GateRules.of(queue, gate_questions, decision_question)
    adjudicated = dict(
        Adjudication.objects.filter(item__queue=queue).values_list("item_id", "decision")
    )
    items = Item.objects.filter(queue=queue).values_list(
        "id",
        "label_id",
        "status",
        "annotation_count",
        "agreement",
        "agreement_state",
        "decision",
        "decision_reason",
        "preferred_response",
    )
    changed, outcomes = [], {}
    tally: dict[str, int] = defaultdict(int)
    for row in items.iterator(chunk_size=50_000):
        item = Item(
            pk=row[0],
            label_id=row[1],
            status=row[2],
            annotation_count=row[3],
            agreement=row[4],
            agreement_state=row[5],
            decision=row[6],
            decision_reason=row[7],
            preferred_response=row[8],
        )
        verdict = item_verdict(
            ItemFacts(
                status=item.status,
                annotation_count=item.annotation_count,
                answers=item_rows.get(item.pk, {}),
                adjudication=adjudicated.get(item.pk),
            ),
            rules=rules,
            on_queue=on_queue,
        )
        tally[str(verdict.state)] += 1
        if verdict.decision:
            tally[f"decision_{verdict.decision}"] += 1
        reason = verdict.reason[:255]
        new = (verdict.agreement, verdict.state, verdict.decision, reason, verdict.preferred)
        old = (
            item.agreement,
            item.agreement_state,
            item.decision,
            item.decision_reason,
            item.preferred_response,
        )
        if new != old:
            (
                item.agreement,
                item.agreement_state,
                item.decision,
                item.decision_reason,
                item.preferred_response,
            ) = new
            changed.append(item)
        if item.label_id is not None:
            outcomes[item.label_id] = (verdict.decision, reason if verdict.decision else "")
    _write_outcomes(queue, changed, outcomes)
    return dict(tally)


OUTCOME_FIELDS = [
    "agreement",
    "agreement_state",
    "decision",
    "decision_reason",
    "preferred_response",
]
WRITE_CHUNK = 1000


def _write_outcomes(
    queue: Queue, changed: list[Item], outcomes: dict[int, tuple[str, str]]
) -> None:
    """Write the gate's outcomes in the lock order: items a chunk at a time, each chunk
    locked in id order in a short transaction of its own; then the labels; then the
    queue's counters, recounted. A run cut short leaves the rest to the next (idempotent)."""
    changed.sort(key=lambda item: item.pk)
    for start in range(0, len(changed), WRITE_CHUNK):
        chunk = changed[start : start + WRITE_CHUNK]
        with transaction.atomic():
            # Locked in id order first: the multi-row UPDATE locks in whatever order its
            # plan reads, and two gate runs on one queue must not cross.
            list(
                Item.objects.select_for_update()
                .filter(pk__in=[item.pk for item in chunk])
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            update_rows(Item, chunk, OUTCOME_FIELDS)
    with transaction.atomic():
        labels_set_review_outcome(outcomes=outcomes)
    if outcomes:
        calibration_forget(queue.project_id)  # new verdicts calibrate derivation at once
    # The counters self-heal from anything that bypassed services: one UPDATE that counts.
    counts = {
        f"items_{status}": Coalesce(
            Subquery(
                Item.objects.filter(queue=OuterRef("pk"), status=status)
                .order_by()
                .values("queue")
                .annotate(n=Count("pk"))
                .values("n"),
                output_field=IntegerField(),
            ),
            0,
        )
        for status in (Item.Status.OPEN, Item.Status.COMPLETE, Item.Status.DISCARDED)
    }
    Queue.objects.filter(pk=queue.pk).update(**counts)
