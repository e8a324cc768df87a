"""Inter-rater agreement: Krippendorff's alpha per question and agreement per item.

Alpha comes from the `krippendorff` package, fed a units x values count matrix (built with
numpy, so a million annotations cost one pass). Where alpha is not defined, the reason is
returned instead of a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Literal

import krippendorff
import numpy as np

from review.models import Question

NO_PAIRS = "no item has two or more annotations yet"
# Answers this skewed (the most common one at least this share of all) make alpha collapse
# even when reviewers agree (the "high agreement, low alpha" paradox): the gate then also
# reads Gwet's AC1, which does not.
SKEWED: float = 0.8
ONE_VALUE = "every annotation gives the same answer, so there is no variation to compare"
LEFT_RIGHT = ("left", "right")


@dataclass(frozen=True)
class QuestionAgreement:
    key: str
    level: str
    alpha: float | None
    items: int  # items with 2+ answers to this question
    answers: int  # answers on those items
    undefined_reason: str | None
    top_share: float | None = None  # share of the answers that give the most common value
    ac1: float | None = None  # Gwet's AC1 (nominal questions with 2+ values in use)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def canonical_values(
    answers: dict[str, Any], presentation: dict[str, Any], *, is_label_pair: bool
) -> dict[str, Any]:
    """Answers with 'left'/'right' mapped back through the shown order, so annotators who
    saw the pair in different orders can agree: 'chosen'/'rejected' for a derived pair,
    'response_1'/'response_2' for free content."""
    order = presentation.get("order")
    if not order:
        return dict(answers)
    values = {}
    for key, value in answers.items():
        if value in LEFT_RIGHT:
            original = order[LEFT_RIGHT.index(value)]
            if is_label_pair:
                value = "chosen" if original == 0 else "rejected"
            else:
                value = f"response_{original + 1}"
        values[key] = value
    return values


def deciding_question(questions: Iterable[Question]) -> Question | None:
    """The question whose majority answer decides an item: the first required choice
    question (None for a queue of ratings only)."""
    return next((q for q in gated(questions) if q.type == Question.Type.CHOICE), None)


def gated(questions: Iterable[Question]) -> list[Question]:
    """Questions whose agreement gates an item: required choice and rating questions."""
    return [q for q in questions if q.required and q.type != Question.Type.TEXT]


def domain_of(question: Question) -> list[Any]:
    """The values a question's answers take, in order: rating values, or the choices
    followed by the canonical pair values (chosen/rejected, response_1/2)."""
    if question.type == Question.Type.RATING:
        return list(range(question.min_value or 0, (question.max_value or 0) + 1))
    domain = list(question.choices)
    if any(c in LEFT_RIGHT for c in domain):
        domain += ["chosen", "rejected", "response_1", "response_2"]
    return domain


@dataclass
class Answers:
    """One question's answers as parallel arrays (one entry per annotation)."""

    question: Question
    domain: list[Any]
    items: np.ndarray
    users: np.ndarray
    codes: np.ndarray
    times: np.ndarray

    @classmethod
    def collect(cls, question: Question, rows: Iterable[tuple[int, int, Any, float]]) -> Answers:
        """From (item_id, user_id, value, epoch seconds) rows; unknown values are dropped
        (a question edited after answers were given)."""
        domain = domain_of(question)
        index = {value: i for i, value in enumerate(domain)}
        items, users, codes, times = [], [], [], []
        for item, user, value, at in rows:
            code = index.get(value)
            if code is not None:
                items.append(item)
                users.append(user)
                codes.append(code)
                times.append(at)
        return cls(
            question,
            domain,
            np.asarray(items, dtype=np.int64),
            np.asarray(users, dtype=np.int64),
            np.asarray(codes, dtype=np.int64),
            np.asarray(times, dtype=np.float64),
        )

    def counts(self, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, items x domain answer counts), over the annotations in `mask`."""
        items = self.items if mask is None else self.items[mask]
        codes = self.codes if mask is None else self.codes[mask]
        units, inverse = np.unique(items, return_inverse=True)
        width = len(self.domain)
        flat = np.bincount(inverse * width + codes, minlength=len(units) * width)
        return units, flat.reshape(len(units), width)


# Question.Level's values are krippendorff's names for the levels of measurement.
_KRIPPENDORFF_LEVEL: dict[str, Literal["nominal", "ordinal", "interval", "ratio"]] = {
    Question.Level.NOMINAL: "nominal",
    Question.Level.ORDINAL: "ordinal",
    Question.Level.INTERVAL: "interval",
    Question.Level.RATIO: "ratio",
}


def alpha_from_counts(question: Question, counts: np.ndarray) -> QuestionAgreement:
    """Alpha over the rows (items) of `counts` with two or more answers."""
    counts = counts[counts.sum(axis=1) >= 2]
    agreement = partial(
        QuestionAgreement, key=question.key, level=question.level, items=int(counts.shape[0])
    )
    answers = int(counts.sum())
    if counts.shape[0] == 0:
        return agreement(answers=0, alpha=None, undefined_reason=NO_PAIRS)
    if int((counts.sum(axis=0) > 0).sum()) < 2:
        return agreement(answers=answers, alpha=None, undefined_reason=ONE_VALUE)
    numeric = question.type == Question.Type.RATING
    domain = domain_of(question) if numeric else list(range(counts.shape[1]))
    alpha = krippendorff.alpha(
        value_counts=counts,
        value_domain=domain,
        level_of_measurement=_KRIPPENDORFF_LEVEL[question.level],
    )
    totals = counts.sum(axis=0)
    nominal = question.level == Question.Level.NOMINAL
    return agreement(
        answers=answers,
        alpha=round(float(alpha), 4),
        undefined_reason=None,
        top_share=round(float(totals.max() / answers), 4),
        ac1=round(gwet_ac1(counts), 4) if nominal else None,
    )


def gwet_ac1(counts: np.ndarray) -> float:
    """Gwet's AC1 over items x values answer counts (rows with 2+ answers; Gwet 2008, for
    several raters and missing answers): observed pairwise agreement corrected by a chance
    agreement that shrinks, unlike alpha's, when one value dominates. Values never given
    are not counted as categories. Needs two values in use."""
    counts = counts[counts.sum(axis=1) >= 2].astype(np.float64)
    raters = counts.sum(axis=1)
    observed = float(np.mean((counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1))))
    used = counts[:, counts.sum(axis=0) > 0]
    prevalence = (used / raters[:, None]).mean(axis=0)
    chance = float((prevalence * (1 - prevalence)).sum() / (used.shape[1] - 1))
    return (observed - chance) / (1 - chance)


def item_agreement_from_counts(
    question: Question, counts: np.ndarray, tolerance: float = 0.0
) -> np.ndarray:
    """Per row: the share of answers agreeing with the most common one. For ordinal,
    interval and ratio questions, answers within `tolerance` of each other (rating value,
    or choice position) count as agreeing."""
    totals = counts.sum(axis=1)
    if question.level == Question.Level.NOMINAL or tolerance <= 0:
        agreeing = counts.max(axis=1)
    else:
        positions = np.asarray(
            domain_of(question)
            if question.type == Question.Type.RATING
            else range(counts.shape[1]),
            dtype=np.float64,
        )
        window = (np.abs(positions[:, None] - positions[None, :]) <= tolerance).astype(np.int64)
        around = counts @ window  # answers within tolerance of each possible centre
        around[counts == 0] = 0  # a centre must be an answer someone gave
        agreeing = around.max(axis=1)
    return np.divide(agreeing, totals, out=np.zeros(len(totals)), where=totals > 0)
