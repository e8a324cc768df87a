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
transaction), then their labels; the queue row for its counters is recounted on a
connection of its own, holding no other lock. Annotators' claims skip locked items, so the
item locks are kept to milliseconds.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
import psycopg
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.background import background_possible, in_background
from core.bulk import update_rows
from feedback.quality import calibration_forget
from feedback.services import labels_set_review_outcome
from review import kept
from review.agreement import (
    ONE_VALUE,
    SKEWED,
    Answers,
    deciding_question,
    domain_of,
    gated,
    item_agreement_parts,
    row_totals,
    share_of,
)
from review.answers import rating_value
from review.models import (
    Adjudication,
    AgreementSnapshot,
    Annotation,
    AnnotatorExclusion,
    Item,
    Question,
    Queue,
)

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
    Reads every annotation and item of the queue once, as arrays; on PostgreSQL, where this
    process kept them from its last run, only those written since (review/kept.py).
    """
    started = time.perf_counter()
    now = now or timezone.now()
    questions = list(queue.questions.all())
    measured = gated(questions)  # alpha for every choice and rating question
    decision_question = deciding_question(questions)
    # The gate judges the question that decides (the first choice question); queues with
    # ratings only are gated on all of them.
    gate_questions = [decision_question] if decision_question else measured
    # A lead's exclusions, read once: the excluded annotators' answers are loaded with the
    # rest (their own figures are still shown) and masked out of everything that judges.
    excluded = _excluded_users(queue)
    # The items' table (status, counts, outcomes written last) is read meanwhile, on a
    # connection of its own where there is one: the database reads it on the other core.
    items = in_background(lambda: _item_table(queue))
    loaded = _load_answers(queue, measured, items)
    # Once the reads are done, the counters are recounted by the database meanwhile.
    recounted = in_background(lambda: _recount(queue))
    answers = loaded
    if excluded.size:
        answers = {key: qa.where(~np.isin(qa.users, excluded)) for key, qa in loaded.items()}
    results: dict[str, Any] = {
        "questions": {},
        "series": {},
        "annotators": {},
        "deciding_question": decision_question.key if decision_question else None,
    }
    per_item: dict[str, ItemAnswers] = {}

    for question in measured:
        qa = answers[question.key]
        units, counts = qa.counts()
        results["questions"][question.key] = {
            **qa.agreement().as_dict(),
            "complete_items": _complete_items(queue, counts),
        }
        results["series"][question.key] = _series(qa)
        answered = row_totals(counts) > 0
        counts = counts[answered]
        parts = item_agreement_parts(question, counts, queue.agreement_tolerance)
        top = counts.argmax(axis=1) if counts.size else np.zeros(0, dtype=np.int64)
        per_item[question.key] = ItemAnswers(
            units[answered], *distinct_shares(*parts), top, qa.domain
        )

    if decision_question is not None:
        key = decision_question.key
        results["annotators"] = _annotator_quality(queue, loaded[key], excluded, answers[key])
    if excluded.size:
        results["excluded_users"] = excluded.tolist()
    results["items"] = _apply_gate(
        queue, gate_questions, decision_question, per_item, results, items.result()
    )

    recounted.result()
    snapshot = AgreementSnapshot.objects.create(
        queue=queue,
        computed_at=now,
        annotations=sum(len(a) for a in answers.values()) // max(1, len(answers)),
        seconds=round(time.perf_counter() - started, 4),
        results=results,
    )
    return snapshot


def _excluded_users(queue: Queue) -> np.ndarray:
    """The ids of the annotators whose answers the queue's leads have excluded (sorted)."""
    users = AnnotatorExclusion.objects.filter(queue=queue, revoked_at__isnull=True).values_list(
        "user_id", flat=True
    )
    return np.asarray(sorted(users), dtype=np.int64)


def _complete_items(queue: Queue, counts: np.ndarray) -> int:
    """Items with all the answers the queue asks for (and at least two) to one question."""
    if not counts.size:
        return 0
    return int((row_totals(counts) >= max(2, queue.annotations_per_item)).sum())


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


@dataclass(frozen=True)
class ItemAnswers:
    """One question's outcome per answered item: `units` (item ids, sorted), the share of
    answers agreeing (`share_values[share_codes]`: the distinct shares, sorted, and each
    item's place among them) and the index in `domain` of the most common answer."""

    units: np.ndarray
    share_values: np.ndarray
    share_codes: np.ndarray
    top: np.ndarray
    domain: list[Any]


def distinct_shares(agreeing: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(share_of(agreeing, totals), return_inverse=True), without sorting a share
    per item: the shares are divided and sorted once per distinct (agreeing, answers)."""
    if not len(totals):
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    pairs, pair_of_item = unique(agreeing * (int(totals.max()) + 1) + totals)
    firsts = np.zeros(len(pairs), dtype=np.int64)
    firsts[pair_of_item] = np.arange(len(pair_of_item))  # any item with that pair
    values, value_of_pair = np.unique(
        share_of(agreeing[firsts], totals[firsts]), return_inverse=True
    )
    return values, value_of_pair.reshape(-1)[pair_of_item]


def _load_answers(
    queue: Queue, questions: list[Question], item_table: Future[np.ndarray]
) -> dict[str, Answers]:
    """Each gated question's answers on items not discarded, read once as arrays. On
    PostgreSQL the database maps each answer to its place in the question's values and
    sends each column as one binary string (fetch_arrays), read in place by numpy, so
    Python never sees a row (a million a run); the answers on discarded items are then
    left out by the queue's `item_table` (`_item_table`, being read meanwhile). SQLite is
    read row by row."""
    indexes = [_value_index(q) for q in questions]
    if connection.vendor == "postgresql":
        signature = tuple((q.key, q.type, tuple(domain_of(q))) for q in questions)
        _, (items, users, times, *codes) = kept.kept_rows(
            kept.ANNOTATIONS,
            queue.pk,
            signature,
            partial(_answer_arrays_postgresql, queue, questions, indexes),
        )
        items, users, times, codes = without_discarded(
            (items, users, times, codes), item_table.result()
        )
    else:
        items, users, times, codes = _answer_arrays_python(queue, questions, indexes)
    units, inverse = unique(items)
    answers = {}
    for question, code in zip(questions, codes, strict=True):
        valid = code >= 0
        answers[question.key] = Answers(
            question,
            list(domain_of(question)),
            units,
            inverse[valid].astype(np.int64),
            users[valid],
            code[valid],
            times[valid],
        )
    return answers


def _value_index(question: Question) -> dict[Any, int]:
    """What each answer value counts as (its position in the question's values)."""
    return {value: i for i, value in enumerate(domain_of(question))}


def _answer_code(question: Question, index: dict[Any, int], value: Any) -> int:
    """The position of an answer as read from the database (-1: not one of the values).
    PostgreSQL gives the JSON value as text; SQLite as the native value."""
    if question.type == Question.Type.RATING and isinstance(value, str):
        number = rating_value(value)
        value = value if number is None else number
    code = index.get(value)
    return -1 if code is None else code


def _json_key(key: str) -> str | int:
    """The key as Django's KT looks it up on PostgreSQL (a whole number: an array index)."""
    try:
        return int(key)
    except ValueError:
        return key


def _answer_arrays_python(
    queue: Queue, questions: list[Question], indexes: list[dict[Any, int]]
) -> AnswerArrays:
    """(item ids, user ids, epoch seconds, per question the answers' positions or -1) of
    the queue's annotations on items not discarded, read row by row (SQLite)."""
    rows = (
        Annotation.objects.filter(queue=queue)
        .exclude(item__status=Item.Status.DISCARDED)
        .values_list(
            "item_id", "user_id", "created_at", *(KT(f"values__{q.key}") for q in questions)
        )
        .iterator(chunk_size=50_000)
    )
    items, users, times = [], [], []
    codes: list[list[int]] = [[] for _ in questions]
    for item_id, user_id, created_at, *texts in rows:
        items.append(item_id)
        users.append(user_id)
        times.append(created_at.timestamp())
        for question, index, text, out in zip(questions, indexes, texts, codes, strict=True):
            out.append(-1 if text is None else _answer_code(question, index, text))
    return (
        np.asarray(items, dtype=np.int64),
        np.asarray(users, dtype=np.int64),
        np.asarray(times, dtype=np.float64),
        [np.asarray(c, dtype=np.int64) for c in codes],
    )


def _answer_arrays_postgresql(
    queue: Queue,
    questions: list[Question],
    indexes: list[dict[Any, int]],
    ids: list[int] | None = None,
) -> kept.Rows:
    """As `_answer_arrays_python`, the same values (with each annotation's id first, as
    `kept.kept_rows` reads rows), but with the answers on discarded items too
    (`without_discarded` leaves them out), in one query: the database gives each answer's
    place in a list of known texts (-1: a text not listed). With `ids`, only those
    annotations (of those that exist).
    Choice answers count only as listed (their exact text); a rating written some other
    way ("+4", " 4") is read once more as the distinct unlisted texts, each mapped as the
    row-by-row read maps it, and the query runs again with those listed too."""
    texts: list[list[str]] = []
    for question, index in zip(questions, indexes, strict=True):
        if question.type == Question.Type.RATING:
            texts.append([str(value) for value in index if isinstance(value, int)])
        else:
            texts.append([value for value in index if isinstance(value, str)])
    for _ in range(2):
        data = _fetch_annotations(queue, questions, texts, ids)
        unlisted = [
            q.type == Question.Type.RATING and bool((data[f"q{n}"] == -1).any())
            for n, q in enumerate(questions)
        ]
        if not any(unlisted):
            break
        for n, question in enumerate(questions):
            if unlisted[n]:
                texts[n] += _unlisted_texts(queue, question, texts[n], ids)
    codes = []
    for n, (question, index) in enumerate(zip(questions, indexes, strict=True)):
        # Places are 1-based: place 1 is no answer (the NULL listed first), places 2 on
        # the texts; -1 (unlisted) and no answer count as nothing.
        lookup = np.asarray(
            [-1, -1, -1, *(_answer_code(question, index, text) for text in texts[n])],
            dtype=np.int64,
        )
        codes.append(lookup[data[f"q{n}"].astype(np.int64) + 1])
    return data["id"].astype(np.int64), [
        data["item"].astype(np.int64),
        data["user"].astype(np.int64),
        data["at"].astype(np.float64),
        *codes,
    ]


def _annotation_sql(
    queue: Queue, where: str = "", ids: list[int] | None = None
) -> tuple[str, list[Any]]:
    """FROM and WHERE of the queue's annotations (those on discarded items too: the item
    table says which, see `without_discarded`), or of those of them in `ids`. Not joined
    to the items: the join cost the database 0.3 s of the 0.8 s it took over a million
    annotations."""
    sql = f"FROM {Annotation._meta.db_table} a WHERE a.queue_id = %s"
    if ids is None:
        return f"{sql} {where}", [queue.pk]
    return f"{sql} AND a.id = ANY(%s::int8[]) {where}", [queue.pk, ids]


def without_discarded(arrays: AnswerArrays, item_table: np.ndarray) -> AnswerArrays:
    """`_answer_arrays_postgresql`'s arrays without the answers on the items `item_table`
    says are discarded (an item it does not hold, made since it was read, is kept)."""
    discarded = item_table["id"][item_table["status"] == DISCARDED].astype(np.int64)
    items, users, times, codes = arrays
    if not discarded.size:
        return arrays
    kept = ~np.isin(items, discarded)
    return items[kept], users[kept], times[kept], [c[kept] for c in codes]


def _fetch_annotations(
    queue: Queue, questions: list[Question], texts: list[list[str]], ids: list[int] | None
) -> dict[str, np.ndarray]:
    """The queue's annotations (discarded items' too; with `ids`, those of them) as arrays:
    annotation, item and user ids, the time (epoch seconds) and per question `q{n}` the
    answer's place: 1 no answer, 2 on the `texts[n]` in order, -1 a text not listed. The
    user and the places travel packed into 64-bit words (the user in the high half, places
    16 bits each): every column costs the database a call per row, whatever its width."""
    columns = [
        ("id", "a.id", ">i8"),
        ("item", "a.item_id", ">i8"),
        # Microseconds since 2000 as PostgreSQL keeps them, made epoch seconds here.
        ("at", "a.created_at", EPOCH),
    ]
    params: list[Any] = []
    words: list[list[str]] = [["(a.user_id::int8 << 32)"]]
    word_params: list[list[Any]] = [[]]
    places: list[tuple[int, int] | None] = []  # (word, shift), None: a column of its own
    for n, (question, listed) in enumerate(zip(questions, texts, strict=True)):
        place, place_params = _answer_place(question, listed)
        if len(listed) + 3 > PACKED_PLACES:  # too many texts for 16 bits
            columns.append((f"q{n}", place, ">i4"))
            params += place_params
            places.append(None)
            continue
        if len(words[-1]) == 3:  # a word holds three places (or the user and two)
            words.append([])
            word_params.append([])
        shift = 16 * (2 - len(words[-1]) if len(words) == 1 else len(words[-1]))
        words[-1].append(f"(({place}) + 1)::int8 << {shift}" if shift else f"(({place}) + 1)::int8")
        word_params[-1] += place_params
        places.append((len(words) - 1, shift))
    for w, (parts, part_params) in enumerate(zip(words, word_params, strict=True)):
        columns.append((f"w{w}", " | ".join(f"({part})" for part in parts), ">i8"))
        params += part_params
    tail, tail_params = _annotation_sql(queue, ids=ids)
    data = fetch_arrays(columns, tail, params + tail_params)
    word0 = data["w0"].astype(np.int64)
    arrays = {
        "id": data["id"],
        "item": data["item"].astype(np.int64),
        "at": data["at"],
        "user": word0 >> 32,
    }
    for n, at in enumerate(places):
        if at is None:
            arrays[f"q{n}"] = data[f"q{n}"].astype(np.int64)
        else:
            word, shift = at
            packed = word0 if word == 0 else data[f"w{word}"].astype(np.int64)
            arrays[f"q{n}"] = ((packed >> shift) & 0xFFFF) - 1
    return arrays


# The most places (texts listed, plus three) packed 16 bits each into a word.
PACKED_PLACES = 0xFFFF


def _answer_place(question: Question, listed: list[str]) -> tuple[str, list[Any]]:
    """SQL for an answer's place (1: no answer, 2 on: the `listed` texts in order, -1: a
    text not listed) and its parameters. One CASE over the answer's text: cheaper for the
    database than array_position, and the text is read once unless it is not listed."""
    answer, key = _answer_text(question), _json_key(question.key)
    whens = " ".join(f"WHEN %s THEN {n}" for n in range(2, len(listed) + 2))
    return (
        f"CASE {answer} {whens} ELSE CASE WHEN {answer} IS NULL THEN 1 ELSE -1 END END"
        if listed
        else f"CASE WHEN {answer} IS NULL THEN 1 ELSE -1 END",
        [key, *listed, key] if listed else [key],
    )


def _answer_text(question: Question) -> str:
    """SQL for the answer's text (a parameter: the key), as KT reads it."""
    cast = "int" if isinstance(_json_key(question.key), int) else "text"
    return f'(a."values" ->> %s::{cast})'


def _unlisted_texts(
    queue: Queue, question: Question, listed: list[str], ids: list[int] | None
) -> list[str]:
    key, answer = _json_key(question.key), _answer_text(question)
    tail, params = _annotation_sql(
        queue, f"AND {answer} IS NOT NULL AND NOT ({answer} = ANY(%s::text[]))", ids
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT {answer} {tail}", [key, *params, key, key, listed])
        return sorted(text for (text,) in cursor.fetchall())


WORK_MEM = "64MB"
# A column kind for fetch_arrays: a timestamp, read as epoch seconds (a float64).
EPOCH = "epoch"
# Each column's binary form, by its numpy kind: PostgreSQL's send function for it.
SEND = {">i8": "int8send", ">i4": "int4send", ">f8": "float8send", EPOCH: "timestamptz_send"}
# PostgreSQL keeps timestamps as microseconds since 2000-01-01 UTC.
EPOCH_2000_US = 946_684_800_000_000


def fetch_arrays(
    columns: list[tuple[str, str, str]],
    tail: str,
    params: list[Any],
) -> dict[str, np.ndarray]:
    """PostgreSQL: for each (name, SQL expression, kind) of `columns`, the values over the
    rows of `tail` (FROM ... WHERE ...) as one numpy array. Kinds are big-endian numpy
    types (>i8, >i4, >f8) of the expression's SQL type (bigint, integer, double
    precision), or EPOCH for a timestamp with time zone, given as float64 epoch seconds,
    exactly as datetime.timestamp() gives them. The expressions must be NOT NULL.

    Each column is one aggregate: its values' binary forms (the type's send function)
    concatenated, read in place by numpy. One value per column crosses the wire, where
    COPY or a cursor hand Python a message or a tuple per row, and no length per value
    (array_agg's arrays carry one, and cost the database half as much again)."""
    aggregates = ", ".join(
        f"string_agg({SEND[kind]}({sql}), ''::bytea)" for _, sql, kind in columns
    )
    connection.ensure_connection()
    with transaction.atomic(), psycopg.Cursor(connection.connection) as cursor:
        row = _read(cursor, f"SELECT {aggregates} {tail}", params)
    arrays = {}
    for n, (name, _, kind) in enumerate(columns):
        data = row[n] if row is not None and row[n] is not None else b""
        raw = np.frombuffer(data, dtype=">i8" if kind == EPOCH else kind)
        if kind == EPOCH:
            # Exact: the microseconds since 1970 are whole numbers below 2**53, and one
            # division rounds once, as PostgreSQL's date_part and Python's timestamp() do.
            arrays[name] = (raw.astype(np.int64) + EPOCH_2000_US).astype(np.float64) / 1e6
        else:
            arrays[name] = raw
    return arrays


def _read(cursor: psycopg.Cursor[Any], query: str, params: list[Any]) -> tuple[Any, ...] | None:
    """The one row of `query`, read with WORK_MEM (in the cursor's transaction)."""
    # Memory enough to join a queue's items to its annotations in one hash (4 MB, the
    # default, makes PostgreSQL merge the two sorted, at twice the time).
    cursor.execute("SELECT current_setting('work_mem')")
    (before,) = cursor.fetchone() or ("4MB",)
    cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    cursor.execute(query, params, binary=True)
    row = cursor.fetchone()
    cursor.execute("SELECT set_config('work_mem', %s, true)", [before])
    return row


def _series(qa: Answers) -> list[dict[str, Any]]:
    """Alpha over the annotations given up to each of a few evenly spaced moments."""
    if len(qa.times) == 0:
        return []
    first, last = float(qa.times.min()), float(qa.times.max())
    cuts = [last] if last == first else np.linspace(first, last, SERIES_POINTS + 1)[1:]
    points = []
    for cut, (alpha, items) in zip(cuts, qa.alphas_through(cuts), strict=True):
        points.append(
            {
                "at": datetime.fromtimestamp(float(cut), tz=UTC).isoformat(),
                "alpha": alpha,
                "items": items,
            }
        )
    return points


def _annotator_quality(
    queue: Queue,
    qa: Answers,
    excluded: np.ndarray | None = None,
    judged: Answers | None = None,
) -> dict[str, Any]:
    """Per annotator: agreement with the majority (on items with 2+ answers), accuracy on
    gold items, and alpha without them (who moves the queue's alpha, and which way).
    Counted for all annotators at once; each one's alpha-without from the queue's counts
    less theirs. The `excluded` annotators' answers count for no one's figures but their
    own: they are compared with the others' majority, and their alpha-without is the
    queue's alpha (it is without them already); they are marked "excluded". `judged` is
    `qa` without the excluded answers where the caller has it (its counts are reused)."""
    if len(qa) == 0:
        return {}
    kept = ~np.isin(qa.users, excluded) if excluded is not None and excluded.size else None
    units, counts = qa.counts(kept)
    rows = qa.rows
    # An excluded answer is not in `counts`: it is compared where one other answer is.
    answered = row_totals(counts)[rows] + (0 if kept is None else ~kept)
    pairable = answered >= 2
    majority = counts.argmax(axis=1)
    agrees = (qa.codes == majority[rows]) & pairable
    counted = pairable

    index = {value: i for i, value in enumerate(qa.domain)}
    gold_of_unit = np.full(len(units), -1, dtype=np.int64)
    for item_id, answers in Item.objects.filter(
        queue=queue, gold_answers__isnull=False
    ).values_list("id", "gold_answers"):
        code = index.get((answers or {}).get(qa.question.key))
        at = int(np.searchsorted(units, item_id))
        if code is not None and at < len(units) and units[at] == item_id:
            gold_of_unit[at] = code
    gold = gold_of_unit[rows]
    on_gold = gold >= 0
    hits = on_gold & (qa.codes == gold)

    user_ids, who = unique(qa.users)
    per_user = len(user_ids)
    if judged is None or kept is None:
        judged = qa if kept is None else qa.where(kept)
    judged_who = who if kept is None else who[kept]
    totals = {
        name: np.bincount(who, weights=flags, minlength=per_user).astype(np.int64).tolist()
        for name, flags in (
            ("annotations", None),
            ("compared", counted),
            ("agreed", agrees),
            ("gold", on_gold),
            ("hits", hits),
        )
    }
    names = dict(
        get_user_model().objects.filter(pk__in=user_ids.tolist()).values_list("id", "username")
    )
    # Each annotator's counted answers as one slice of those ordered by annotator (an
    # excluded annotator's slice is empty).
    narrow = judged_who.astype(np.int16) if per_user < 1 << 15 else judged_who
    order = np.argsort(narrow, kind="stable")
    judged_counts = np.bincount(judged_who, minlength=per_user).tolist()
    ends = np.cumsum(judged_counts).tolist()
    out = set() if excluded is None else set(excluded.tolist())
    report = {}
    for n, user_id in enumerate(user_ids.tolist()):
        compared, gold_items = totals["compared"][n], totals["gold"][n]
        majority_share = totals["agreed"][n] / compared if compared else None
        gold_share = totals["hits"][n] / gold_items if gold_items else None
        alpha_without, _ = judged.alpha_without(order[ends[n] - judged_counts[n] : ends[n]])
        shares = [s for s in (majority_share, gold_share) if s is not None]
        report[names.get(user_id, str(user_id))] = {
            "annotations": totals["annotations"][n],
            "majority_agreement": None if majority_share is None else round(majority_share, 4),
            "gold_items": gold_items,
            "gold_accuracy": None if gold_share is None else round(gold_share, 4),
            "alpha_without": alpha_without,
            "flagged": compared + gold_items >= MIN_ITEMS_TO_FLAG
            and bool(shares)
            and min(shares) < queue.min_annotator_agreement,
        }
        if user_id in out:
            report[names.get(user_id, str(user_id))]["excluded"] = True
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
    per_item: dict[str, ItemAnswers],
    results: dict[str, Any],
    items: np.ndarray,
) -> dict[str, int]:
    """Decide every item of the queue and write the outcomes that changed. Items alike in
    everything the decision reads (status, annotations, each question's agreement and
    majority answer, adjudication) are decided once, by `item_verdict`. Items' counts leave
    excluded annotators' answers out already (review/exclusions.py keeps them so).
    `items` is the queue's `_item_table`, read no later than the answers: an answer given
    in between finds its item still short of it (pending until the recompute its submit
    schedules), never an item counted complete on the answers before it."""
    on_queue = queue_verdict(
        [results["questions"][q.key] for q in gate_questions], min_alpha=queue.min_alpha
    )
    rules = GateRules.of(queue, gate_questions, decision_question)
    ids = items["id"].astype(np.int64)
    adjudicated = dict(
        Adjudication.objects.filter(item__queue=queue).values_list("item_id", "decision")
    )
    decisions = sorted(set(adjudicated.values()))
    adjudication = np.zeros(len(ids), dtype=np.int64)
    if adjudicated:
        position = {item_id: n for n, item_id in enumerate(ids.tolist())}
        for item_id, decision in adjudicated.items():
            if item_id in position:
                adjudication[position[item_id]] = decisions.index(decision) + 1
    annotation_count = items["annotation_count"].astype(np.int64)
    columns = [items["status"].astype(np.int64), annotation_count, adjudication]
    share_values: dict[str, np.ndarray] = {}
    for key, answered in per_item.items():
        top = np.zeros(len(ids), dtype=np.int64)
        share = np.zeros(len(ids), dtype=np.int64)
        share_values[key] = answered.share_values
        at = positions(answered.units, ids)
        found = at >= 0
        top[found] = answered.top[at[found]] + 1
        share[found] = answered.share_codes[at[found]] + 1
        columns += [top, share]
    first, kinds = _distinct(columns)

    verdicts = []
    for row in first.tolist():
        answers = {}
        for n, (key, answered) in enumerate(per_item.items()):
            top_code, share_code = int(columns[3 + 2 * n][row]), int(columns[4 + 2 * n][row])
            if top_code:
                answers[key] = (
                    float(share_values[key][share_code - 1]),
                    answered.domain[top_code - 1],
                )
        status = int(columns[0][row])
        facts = ItemFacts(
            status=STATUSES[status - 1] if status else "",
            annotation_count=int(columns[1][row]),
            answers=answers,
            adjudication=decisions[adjudication[row] - 1] if adjudication[row] else None,
        )
        verdicts.append(item_verdict(facts, rules=rules, on_queue=on_queue))

    tally: dict[str, int] = defaultdict(int)
    for verdict, count in zip(
        verdicts, np.bincount(kinds, minlength=len(verdicts)).tolist(), strict=True
    ):
        tally[str(verdict.state)] += count
        if verdict.decision:
            tally[f"decision_{verdict.decision}"] += count
    new = [
        (v.agreement, str(v.state), str(v.decision), v.reason[:255], v.preferred) for v in verdicts
    ]
    outcome_columns = _outcome_columns(new)
    changed = np.flatnonzero(~_same_outcome(items, outcome_columns, kinds))
    changed = changed[np.argsort(ids[changed], kind="stable")]
    outcomes = {
        label: (new[kind][2], new[kind][3] if new[kind][2] else "")
        for label, kind in zip(
            items["label"][items["label"] >= 0].tolist(),
            kinds[items["label"] >= 0].tolist(),
            strict=True,
        )
    }
    xids = _write_outcomes(queue, ids[changed].tolist(), kinds[changed].tolist(), new, outcomes)
    if xids:
        # This process's kept items take the outcomes written, so that the next recompute
        # does not read the items again for them (review/kept.py).
        kept.wrote(
            kept.ITEMS,
            queue.pk,
            items,
            xids,
            partial(_patch_outcomes, at=changed, columns=outcome_columns, kinds=kinds[changed]),
        )
    return dict(tally)


STATUSES: list[str] = [Item.Status.OPEN, Item.Status.COMPLETE, Item.Status.DISCARDED]
DISCARDED = STATUSES.index(Item.Status.DISCARDED) + 1  # in the item table's status column


def _distinct(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(the first row of each distinct combination of `columns` (small non-negative
    integers), each row's combination) as np.unique gives them."""
    if not len(columns[0]):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    key = np.zeros(len(columns[0]), dtype=np.int64)
    span = 1
    for column in columns:
        radix = int(column.max()) + 1
        span *= radix
        if span >= 1 << 62:  # too many combinations to number: compare rows instead
            _, first, kinds = np.unique(
                np.stack(columns, axis=1), axis=0, return_index=True, return_inverse=True
            )
            return first, kinds.reshape(-1)
        key = key * radix + column
    kinds_of, kinds = unique(key)
    first = np.full(len(kinds_of), len(key), dtype=np.int64)
    np.minimum.at(first, kinds, np.arange(len(key)))
    return first, kinds


def unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_inverse=True) for non-negative integers; by counting,
    without a sort, when they span no more than a few times their number (ids do)."""
    if len(values) == 0:
        return values.astype(np.int64), np.zeros(0, dtype=np.int64)
    low, high = int(values.min()), int(values.max())
    if low < 0 or high - low > 4 * len(values) + 1024:
        found, inverse = np.unique(values, return_inverse=True)
        return found, inverse.reshape(-1).astype(np.int64)
    present = np.bincount(values - low, minlength=high - low + 1) > 0
    position = np.cumsum(present) - 1
    return np.flatnonzero(present) + low, position[values - low]


# (item ids, user ids, epoch seconds, per question each answer's place in its values or -1)
type AnswerArrays = tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]


def positions(units: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each of `values`' position in `units` (sorted, distinct, non-negative integers), or
    -1 where it is not there. By a table of the span of `units` where that is no more than
    a few times their number (ids), else by binary search."""
    if not len(units):
        return np.full(len(values), -1, dtype=np.int64)
    low, high = int(units[0]), int(units[-1])
    if high - low > 4 * len(units) + 1024:
        at = np.minimum(np.searchsorted(units, values), len(units) - 1)
        return np.where(units[at] == values, at, -1)
    table = np.full(high - low + 1, -1, dtype=np.int64)
    table[units - low] = np.arange(len(units))
    inside = (values >= low) & (values <= high)
    at = np.full(len(values), -1, dtype=np.int64)
    at[inside] = table[values[inside] - low]
    return at


def _item_table(queue: Queue) -> np.ndarray:
    """The queue's items as arrays (ITEM_TABLE): id, label (-1: none), status (its place
    in STATUSES, 0: other), annotation_count, and the outcome written last: agreement
    (NaN: none), preferred response (-1: none) and a 64-bit hash of state, decision and
    reason, which is how a change of them is seen without reading the texts (hashing
    costs PostgreSQL a third of what MD5 does)."""
    if connection.vendor == "postgresql":
        _, (table,) = kept.kept_rows(
            kept.ITEMS, queue.pk, ITEM_TABLE, partial(_item_table_postgresql, queue)
        )
        return table
    return _item_table_python(queue)


ITEM_TABLE = np.dtype(
    [
        ("id", ">i8"),
        ("label", ">i8"),
        ("status", ">i4"),
        ("annotation_count", ">i4"),
        ("agreement", ">f8"),
        ("preferred", ">i4"),
        ("texts", ">i8"),
    ]
)


def _item_table_postgresql(queue: Queue, ids: list[int] | None = None) -> kept.Rows:
    """`_item_table` in one query (fetch_arrays), as `kept.kept_rows` reads rows (with
    `ids`: the items of those that exist). Status, count and preferred response travel
    packed in one 64-bit word (the count and the preferred response are smallints, never
    negative)."""
    packed = (
        "(coalesce(array_position(%s::text[], status::text), 0)::int8 << 40)"
        " | ((coalesce(preferred_response, -1) + 1)::int8 << 20) | annotation_count::int8"
    )
    arrays = fetch_arrays(
        [
            ("id", "id", ">i8"),
            ("label", "coalesce(label_id, -1)", ">i8"),
            ("agreement", "coalesce(agreement, 'NaN')", ">f8"),
            ("texts", f"hashtextextended({TEXTS}, 0)", ">i8"),
            ("packed", packed, ">i8"),
        ],
        f"FROM {Item._meta.db_table} WHERE queue_id = %s"
        + ("" if ids is None else " AND id = ANY(%s::int8[])"),
        [[str(s) for s in STATUSES], queue.pk, *([] if ids is None else [ids])],
    )
    word = arrays["packed"].astype(np.int64)
    arrays["status"] = word >> 40
    arrays["preferred"] = ((word >> 20) & 0xFFFFF) - 1
    arrays["annotation_count"] = word & 0xFFFFF
    table = np.zeros(len(word), dtype=ITEM_TABLE)
    for name in ITEM_TABLE.names or ():
        table[name] = arrays[name]
    return table["id"].astype(np.int64), [table]


def _item_table_python(queue: Queue) -> np.ndarray:
    """`_item_table` row by row (SQLite)."""
    rows = Item.objects.filter(queue=queue).values_list(
        "id",
        "label_id",
        "status",
        "annotation_count",
        "agreement",
        "preferred_response",
        "agreement_state",
        "decision",
        "decision_reason",
    )
    table = np.zeros(rows.count(), dtype=ITEM_TABLE)
    for n, (pk, label, status, count, agreement, preferred, *texts) in enumerate(rows):
        table[n] = (
            pk,
            -1 if label is None else label,
            STATUSES.index(status) + 1 if status in STATUSES else 0,
            count,
            math.nan if agreement is None else agreement,
            -1 if preferred is None else preferred,
            _digests(["\x1f".join(texts)])[0],
        )
    return table


# An item's outcome texts (state, decision, reason) as one, for comparing by a 64-bit hash.
TEXTS = "concat_ws(chr(31), agreement_state, decision, decision_reason)"


def _digests(texts: list[str]) -> np.ndarray:
    """The 64-bit hash each of `texts` is compared by: on PostgreSQL the one _item_table
    reads (hashtextextended), elsewhere BLAKE2b's first 8 bytes."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT hashtextextended(t, 0) FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, n)"
                " ORDER BY n",
                [texts],
            )
            return np.asarray([h for (h,) in cursor.fetchall()], dtype=np.int64)
    return np.asarray(
        [
            int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "big", signed=True)
            for t in texts
        ],
        dtype=np.int64,
    )


def _outcome_columns(new: list[tuple[Any, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The item table's outcome columns (agreement, preferred, texts) of each of the
    outcomes `new` (in OUTCOME_FIELDS order)."""
    agreement = np.asarray([math.nan if n[0] is None else n[0] for n in new], dtype=np.float64)
    preferred = np.asarray([-1 if n[4] is None else n[4] for n in new], dtype=np.int64)
    return agreement, preferred, _digests(["\x1f".join(n[1:4]) for n in new])


def _same_outcome(
    items: np.ndarray, columns: tuple[np.ndarray, np.ndarray, np.ndarray], kinds: np.ndarray
) -> np.ndarray:
    """Per item: is the outcome written last the one just decided (`columns`, the
    `_outcome_columns` of the decided outcomes; item n decided the `kinds[n]`th)?"""
    agreement, preferred, texts = columns
    old = items["agreement"].astype(np.float64)
    now = agreement[kinds]
    return (
        ((old == now) | (np.isnan(old) & np.isnan(now)))
        & (items["preferred"].astype(np.int64) == preferred[kinds])
        & (items["texts"].astype(np.int64) == texts[kinds])
    )


def _patch_outcomes(
    rows: kept.Rows,
    at: np.ndarray,
    columns: tuple[np.ndarray, np.ndarray, np.ndarray],
    kinds: np.ndarray,
) -> kept.Rows:
    """Kept item rows (`_item_table_postgresql`) with the outcomes just written: the rows
    at positions `at` got the `kinds`th of the outcomes whose columns are `columns`."""
    ids, (table,) = rows
    table = table.copy()
    agreement, preferred, texts = columns
    table["agreement"][at] = agreement[kinds]
    table["preferred"][at] = preferred[kinds]
    table["texts"][at] = texts[kinds]
    return ids, [table]


OUTCOME_FIELDS = [
    "agreement",
    "agreement_state",
    "decision",
    "decision_reason",
    "preferred_response",
]
WRITE_CHUNK = 1000


def _write_outcomes(
    queue: Queue,
    ids: list[int],
    kinds: list[int],
    new: list[tuple[Any, ...]],
    outcomes: dict[int, tuple[str, str]],
) -> list[int]:
    """Write the gate's outcomes (item `ids[n]` gets `new[kinds[n]]`, in OUTCOME_FIELDS
    order; ids in id order) in the lock order: items a chunk at a time, each chunk locked
    in id order in a short transaction of its own (on PostgreSQL outside a transaction,
    every other chunk on a second connection: a recompute writing 333k outcomes took
    1.9-2.7 s instead of 3.3-3.6); then the labels. The queue's counters are recounted
    meanwhile (`_recount`). A run cut short leaves the rest to the next (idempotent).
    Returns the ids of the transactions that wrote the items, on PostgreSQL."""
    xids: list[int] = []

    def write(starts: range) -> None:
        for start in starts:
            chunk = ids[start : start + WRITE_CHUNK]
            chunk_kinds = kinds[start : start + WRITE_CHUNK]
            with transaction.atomic():
                xid = _update_outcomes(chunk, chunk_kinds, new)
            if xid is not None:
                xids.append(xid)

    starts = range(0, len(ids), WRITE_CHUNK)
    if len(starts) > 1 and background_possible():
        # Every other chunk on a connection of its own, meanwhile: the database writes on
        # both cores. Chunks hold no item in common, and each locks its own in id order.
        odd = in_background(lambda: write(starts[1::2]))
        try:
            write(starts[0::2])
        finally:
            odd.result()
    else:
        write(starts)
    with transaction.atomic():
        labels_set_review_outcome(outcomes=outcomes)
    if outcomes:
        calibration_forget(queue.project_id)  # new verdicts calibrate derivation at once
    return xids


def _update_outcomes(ids: list[int], kinds: list[int], new: list[tuple[Any, ...]]) -> int | None:
    """One chunk's outcomes (`_write_outcomes`), in the caller's transaction; on
    PostgreSQL, returns that transaction's id."""
    if connection.vendor == "postgresql":
        return _update_outcomes_postgresql(ids, kinds, new)
    # Locked in id order first: the multi-row UPDATE locks in whatever order its plan
    # reads, and two gate runs on one queue must not cross.
    list(Item.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))
    update_rows(
        Item,
        [
            Item(pk=pk, **dict(zip(OUTCOME_FIELDS, new[kind], strict=True)))
            for pk, kind in zip(ids, kinds, strict=True)
        ],
        OUTCOME_FIELDS,
    )
    return None


def _update_outcomes_postgresql(
    ids: list[int], kinds: list[int], new: list[tuple[Any, ...]]
) -> int:
    """Lock the chunk's items in id order (and learn the transaction's id, for
    `kept.wrote`), then one UPDATE: each item's id and the number of its outcome among the
    few distinct ones (`new`), joined to those (no model instances, and no parameter per
    row: psycopg writes long lists of values in Python).
    The commit does not wait for the WAL to reach the disk: outcomes are derived data, and
    a crash that loses the last chunks leaves them to the next run, as a run cut short
    does."""
    table = Item._meta.db_table
    columns = [list(column) for column in zip(*new, strict=True)]
    id_list = "{" + ",".join(map(str, ids)) + "}"
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(
            "SELECT pg_current_xact_id()::text::int8, count(*) FROM (SELECT id"  # noqa: S608
            f" FROM {table} WHERE id = ANY(%s::int8[]) ORDER BY id FOR UPDATE) AS l",
            [id_list],
        )
        xid, _ = cursor.fetchone() or (0, 0)
        cursor.execute(
            f"UPDATE {table} SET agreement = o.agreement, agreement_state = o.state,"  # noqa: S608
            " decision = o.decision, decision_reason = o.reason,"
            " preferred_response = o.preferred"
            " FROM unnest(%s::int8[], %s::int4[]) AS v(id, kind)"
            " JOIN unnest(%s::float8[], %s::text[], %s::text[], %s::text[], %s::int4[])"
            " WITH ORDINALITY AS o(agreement, state, decision, reason, preferred, kind)"
            " ON o.kind = v.kind + 1"
            f" WHERE {table}.id = v.id",
            [id_list, "{" + ",".join(map(str, kinds)) + "}", *columns],
        )
    return int(xid)


def _recount(queue: Queue) -> None:
    """The queue's item counters, counted again: they self-heal from anything that bypassed
    the services. One UPDATE that counts, on a connection that holds no other lock: it
    may wait for a submit's transaction (which locks its item, then this row) and a submit
    may wait for it, but neither waits on a lock the other waits for. Outcomes change no
    status, so it may run while they are written."""
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
