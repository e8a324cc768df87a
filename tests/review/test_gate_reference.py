"""The agreement recompute (review/gate.py: arrays read in one query, alphas from distinct
count rows, leave-one-out by subtraction, items decided once per distinct case, outcomes
written by joins) against a straightforward computation on the same random queue: one
krippendorff.alpha call per figure on a count matrix built from plain rows, annotators
one by one, and `item_verdict` item by item. Alphas, series, annotator figures, the tally,
and every item's written outcome must be identical, on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import krippendorff
import numpy as np
import pytest
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from review import gate
from review.agreement import (
    NO_PAIRS,
    ONE_VALUE,
    deciding_question,
    domain_of,
    gated,
    gwet_ac1,
    item_agreement_parts,
    share_of,
)
from review.answers import rating_value
from review.models import Adjudication, Annotation, Item, Question, Queue

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
# Ratings as the JSON may hold them: whole numbers, and texts (some not whole numbers, some
# outside the scale: dropped). Not JSON true or 4.0, which the two databases read apart
# (SQLite's JSON functions give 1 and 4.0, PostgreSQL's ->> 'true' and '4.0').
RATINGS = st.one_of(
    st.integers(1, 12),
    st.sampled_from(["3", "+4", " 2 ", "05", "4.0", "seven", "13"]),
)
serial = itertools.count()


@st.composite
def queues(draw: Any) -> dict[str, Any]:
    users = draw(st.integers(2, 6))
    items = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "status": st.sampled_from(["complete"] * 4 + ["open", "discarded"]),
                    "answers": st.lists(
                        st.tuples(
                            st.sampled_from(["yes", "no", "unsure", "maybe"]),
                            RATINGS,
                            st.integers(0, 6),  # time, in (coarse, to tie) steps
                        ),
                        max_size=users,
                    ),
                    "adjudication": st.sampled_from([None] * 6 + ["accepted", "discarded"]),
                    "gold": st.sampled_from([None] * 4 + ["yes", "no", "nonsense"]),
                }
            ),
            min_size=1,
            max_size=24,
        )
    )
    return {
        "users": users,
        "items": items,
        "ratings_only": draw(st.booleans()),
        # 1..12: too many count rows to number them (Answers compares rows instead)
        "scale": draw(st.sampled_from([5, 12])),
        "per_item": draw(st.integers(1, 3)),
        "min_alpha": draw(st.sampled_from([0.0, 0.4, 0.667, 0.8])),
        "min_item": draw(st.sampled_from([0.5, 0.6, 0.67, 1.0])),
        "tolerance": draw(st.sampled_from([0.0, 1.0])),
        "min_annotator": draw(st.sampled_from([0.5, 0.8])),
    }


def build(spec: dict[str, Any], project: Any) -> Queue:
    run = next(serial)
    queue = Queue.objects.create(
        project=project,
        name=f"random {run}",
        annotations_per_item=spec["per_item"],
        min_alpha=spec["min_alpha"],
        min_item_agreement=spec["min_item"],
        agreement_tolerance=spec["tolerance"],
        min_annotator_agreement=spec["min_annotator"],
    )
    if not spec["ratings_only"]:
        Question.objects.create(
            queue=queue,
            key="verdict",
            type="choice",
            prompt="Right?",
            choices=["yes", "no", "unsure"],
        )
    Question.objects.create(
        queue=queue,
        key="quality",
        type="rating",
        prompt="Quality",
        min_value=1,
        max_value=spec["scale"],
        level="ordinal",
        position=1,
    )
    User = get_user_model()
    users = [User.objects.create(username=f"ref{run}-{n}") for n in range(spec["users"])]
    lead = users[0]
    for n, item_spec in enumerate(spec["items"]):
        item = Item.objects.create(
            queue=queue,
            reason="api",
            status=item_spec["status"],
            annotation_count=len(item_spec["answers"]),
            gold_answers={"verdict": item_spec["gold"]} if item_spec["gold"] else None,
        )
        Annotation.objects.bulk_create(
            Annotation(
                item=item,
                queue=queue,
                user=user,
                answers={},
                values={"verdict": verdict, "quality": rating},
                created_at=START + timedelta(hours=step, seconds=n % 2),
            )
            for user, (verdict, rating, step) in zip(users, item_spec["answers"], strict=False)
        )
        if item_spec["adjudication"]:
            Adjudication.objects.create(
                item=item, decided_by=lead, decision=item_spec["adjudication"]
            )
    return queue


def reference(queue: Queue) -> dict[str, Any]:
    """The recompute's figures computed plainly (what the code did before it was fast)."""
    questions = list(queue.questions.all())
    measured = gated(questions)
    decision_question = deciding_question(questions)
    gate_questions = [decision_question] if decision_question else measured
    rows = [
        (a.item_id, a.user_id, a.created_at.timestamp(), a.values)
        for a in Annotation.objects.filter(item__queue=queue).exclude(item__status="discarded")
    ]
    answers: dict[str, list[tuple[int, int, float, int]]] = {}
    for question in measured:
        index = {value: i for i, value in enumerate(domain_of(question))}
        kept = []
        for item_id, user_id, at, values in rows:
            value = values.get(question.key)
            if question.type == "rating" and value is not None:
                value = rating_value(str(value))
            if not isinstance(value, str | int) or value not in index:
                continue
            kept.append((item_id, user_id, at, index[value]))
        answers[question.key] = kept

    def counts(question: Question, kept: list) -> tuple[list[int], np.ndarray]:
        per_item: dict[int, Counter] = defaultdict(Counter)
        for item_id, _, _, code in kept:
            per_item[item_id][code] += 1
        units = sorted(per_item)
        matrix = np.zeros((len(units), len(domain_of(question))), dtype=np.int64)
        for row, unit in enumerate(units):
            for code, n in per_item[unit].items():
                matrix[row, code] = n
        return units, matrix

    def alpha(question: Question, matrix: np.ndarray) -> tuple[float | None, int, str | None]:
        matrix = matrix[matrix.sum(axis=1) >= 2]
        if not len(matrix):
            return None, 0, NO_PAIRS
        if (matrix.sum(axis=0) > 0).sum() < 2:
            return None, len(matrix), ONE_VALUE
        numeric = question.type == "rating"
        value = krippendorff.alpha(
            value_counts=matrix,
            value_domain=domain_of(question) if numeric else list(range(matrix.shape[1])),
            level_of_measurement=question.level,
        )
        return round(float(value), 4), len(matrix), None

    result: dict[str, Any] = {"questions": {}, "series": {}, "annotators": {}}
    per_item: dict[int, dict[str, tuple[float, Any]]] = defaultdict(dict)
    for question in measured:
        kept = answers[question.key]
        units, matrix = counts(question, kept)
        figure, items, why = alpha(question, matrix)
        pairable = matrix[matrix.sum(axis=1) >= 2]
        total = int(pairable.sum())
        result["questions"][question.key] = {
            "key": question.key,
            "level": question.level,
            "alpha": figure,
            "items": items,
            "answers": total,
            "undefined_reason": why,
            "top_share": None if why else round(float(pairable.sum(axis=0).max() / total), 4),
            "ac1": round(gwet_ac1(pairable), 4)
            if not why and question.level == "nominal"
            else None,
            "complete_items": int((matrix.sum(axis=1) >= max(2, queue.annotations_per_item)).sum()),
        }
        series = []
        if kept:
            times = np.asarray([at for _, _, at, _ in kept])
            first, last = float(times.min()), float(times.max())
            cuts = [last] if last == first else np.linspace(first, last, 9)[1:]
            for cut in cuts:
                figure, items, _ = alpha(
                    question, counts(question, [k for k in kept if k[2] <= cut])[1]
                )
                series.append(
                    {
                        "at": datetime.fromtimestamp(float(cut), tz=UTC).isoformat(),
                        "alpha": figure,
                        "items": items,
                    }
                )
        result["series"][question.key] = series
        shares = share_of(*item_agreement_parts(question, matrix, queue.agreement_tolerance))
        domain = domain_of(question)
        for unit, share, row in zip(units, shares.tolist(), matrix, strict=True):
            per_item[unit][question.key] = (share, domain[int(row.argmax())])

    if decision_question is not None:
        kept = answers[decision_question.key]
        units, matrix = counts(decision_question, kept)
        row_of = {unit: n for n, unit in enumerate(units)}
        index = {value: i for i, value in enumerate(domain_of(decision_question))}
        gold = {
            item.pk: index.get((item.gold_answers or {}).get(decision_question.key))
            for item in Item.objects.filter(queue=queue, gold_answers__isnull=False)
        }
        names = dict(get_user_model().objects.values_list("id", "username"))
        for user_id in sorted({k[1] for k in kept}):
            mine = [k for k in kept if k[1] == user_id]
            compared = agreed = 0
            for item_id, _, _, code in mine:
                row = matrix[row_of[item_id]]
                if row.sum() >= 2:
                    compared += 1
                    agreed += int(code == row.argmax())
            hits = [code == gold[i] for i, _, _, code in mine if gold.get(i) is not None]
            majority = agreed / compared if compared else None
            accuracy = sum(hits) / len(hits) if hits else None
            without = alpha(
                decision_question,
                counts(decision_question, [k for k in kept if k[1] != user_id])[1],
            )[0]
            shares = [s for s in (majority, accuracy) if s is not None]
            result["annotators"][names[user_id]] = {
                "annotations": len(mine),
                "majority_agreement": None if majority is None else round(majority, 4),
                "gold_items": len(hits),
                "gold_accuracy": None if accuracy is None else round(accuracy, 4),
                "alpha_without": without,
                "flagged": compared + len(hits) >= gate.MIN_ITEMS_TO_FLAG
                and bool(shares)
                and min(shares) < queue.min_annotator_agreement,
            }

    on_queue = gate.queue_verdict(
        [result["questions"][q.key] for q in gate_questions], min_alpha=queue.min_alpha
    )
    rules = gate.GateRules.of(queue, gate_questions, decision_question)
    adjudicated = dict(
        Adjudication.objects.filter(item__queue=queue).values_list("item_id", "decision")
    )
    tally: Counter = Counter()
    outcomes = {}
    for item in Item.objects.filter(queue=queue):
        verdict = gate.item_verdict(
            gate.ItemFacts(
                status=item.status,
                annotation_count=item.annotation_count,
                answers=per_item.get(item.pk, {}),
                adjudication=adjudicated.get(item.pk),
            ),
            rules=rules,
            on_queue=on_queue,
        )
        tally[str(verdict.state)] += 1
        if verdict.decision:
            tally[f"decision_{verdict.decision}"] += 1
        outcomes[item.pk] = (
            verdict.agreement,
            str(verdict.state),
            str(verdict.decision),
            verdict.reason[:255],
            verdict.preferred,
        )
    result["items"] = dict(tally)
    result["outcomes"] = outcomes
    return result


def written(queue: Queue) -> dict[int, tuple]:
    return {
        pk: tuple(rest)
        for pk, *rest in Item.objects.filter(queue=queue).values_list(
            "id",
            "agreement",
            "agreement_state",
            "decision",
            "decision_reason",
            "preferred_response",
        )
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=queues())
def test_the_recompute_matches_a_straightforward_computation(project, spec):
    queue = build(spec, project)
    expected = reference(queue)

    results = gate.queue_agreement_recompute(queue=queue).results

    assert results["questions"] == expected["questions"]
    assert results["series"] == expected["series"]
    assert results["annotators"] == expected["annotators"]
    assert results["items"] == expected["items"]
    assert written(queue) == expected["outcomes"]
    # A second run over the same answers finds nothing to change and says the same.
    again = gate.queue_agreement_recompute(queue=queue).results
    assert {k: again[k] for k in expected if k != "outcomes"} == {
        k: results[k] for k in expected if k != "outcomes"
    }
    assert written(queue) == expected["outcomes"]


def test_a_queue_without_annotations_decides_every_item_pending(project):
    queue = build(
        {
            "users": 2,
            "items": [{"status": "open", "answers": [], "adjudication": None, "gold": None}] * 3,
            "ratings_only": False,
            "scale": 5,
            "per_item": 2,
            "min_alpha": 0.667,
            "min_item": 0.67,
            "tolerance": 0.0,
            "min_annotator": 0.5,
        },
        project,
    )

    results = gate.queue_agreement_recompute(queue=queue).results

    assert results["items"] == {"pending": 3}
    assert results["questions"]["verdict"]["undefined_reason"] == NO_PAIRS
    assert results["annotators"] == {}
    assert set(written(queue).values()) == {(None, "pending", "", "needs more annotations", None)}


def test_a_wide_scale_with_many_alike_answers_matches_too(project):
    """Count rows too many to number (12 values, four alike answers: 5**12 keys), so
    Answers compares the rows themselves."""
    ratings = [(7, 7, 7, 7), (7, 7, 7, 2), (1, 12, 1, 12), (3, 3, 4, 3), (9, 9, 9, 9)]
    items = [
        {
            "status": "complete",
            "answers": [("yes" if r > 5 else "no", r, n) for n, r in enumerate(row)],
            "adjudication": None,
            "gold": "yes",
        }
        for row in ratings * 3
    ]
    spec = {
        "users": 4,
        "items": items,
        "ratings_only": False,
        "scale": 12,
        "per_item": 4,
        "min_alpha": 0.4,
        "min_item": 0.67,
        "tolerance": 1.0,
        "min_annotator": 0.8,
    }
    queue = build(spec, project)
    expected = reference(queue)

    results = gate.queue_agreement_recompute(queue=queue).results

    assert results["questions"]["quality"]["alpha"] is not None
    for key in ("questions", "series", "annotators", "items"):
        assert results[key] == expected[key]
    assert written(queue) == expected["outcomes"]
