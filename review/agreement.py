"""Inter-rater agreement: Krippendorff's alpha per question and agreement per item.

Alpha comes from the `krippendorff` package, fed a units x values count matrix (built with
numpy, so a million annotations cost one pass). Where alpha is not defined, the reason is
returned instead of a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import cached_property, partial
from typing import Any, Literal

import krippendorff
import numpy as np
from krippendorff import krippendorff as _kd

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
    """One question's answers as parallel arrays (one entry per annotation). `units` are the
    item ids of every loaded annotation, sorted (shared by the questions read together, so
    some may have no answer to this one); `rows` gives each answer's position in `units`,
    `codes` its position in `domain`."""

    question: Question
    domain: list[Any]
    units: np.ndarray
    rows: np.ndarray
    users: np.ndarray
    codes: np.ndarray
    times: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    def where(self, mask: np.ndarray) -> Answers:
        """The answers in `mask` (over the same `units`), e.g. all but an excluded
        annotator's: the same figures as if the others had never been loaded."""
        return Answers(
            self.question,
            self.domain,
            self.units,
            self.rows[mask],
            self.users[mask],
            self.codes[mask],
            self.times[mask],
        )

    def counts(self, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(`units`, units x domain answer counts) over the annotations in `mask`; a unit
        without an answer there has a row of zeros."""
        rows = self.rows if mask is None else self.rows[mask]
        codes = self.codes if mask is None else self.codes[mask]
        width = len(self.domain)
        flat = np.bincount(rows * width + codes, minlength=len(self.units) * width)
        return self.units, flat.reshape(len(self.units), width)

    def agreement(self) -> QuestionAgreement:
        """Alpha (with AC1 and the top share) over all the answers."""
        return alpha_from_counts(self.question, self.counts()[1], alpha=lambda: self.alpha()[0])

    def alpha(self, mask: np.ndarray | None = None) -> tuple[float | None, int]:
        """(alpha or None where undefined, items with 2+ answers) over the answers in `mask`,
        as `alpha_from_counts` gives them, from the distinct rows of the count matrix."""
        if self._keyed:
            rows = self.rows if mask is None else self.rows[mask]
            weights = self._weights if mask is None else self._weights[mask]
            keys = np.bincount(rows, weights=weights, minlength=len(self.units))
            return self._alpha_of_keys(keys.astype(np.int64), mask, None)
        return self._alpha_of_dense(self._dense(mask, None))

    def alphas_through(self, cuts: Iterable[float]) -> list[tuple[float | None, int]]:
        """`alpha(self.times <= cut)` for each of the ascending `cuts`: with the count rows
        numbered, each answer's number is added in once, to the first cut it falls
        under, and the cuts' counts are running sums of those (exact: whole numbers)."""
        cuts = np.asarray(list(cuts), dtype=np.float64)
        if not self._keyed:
            return [self.alpha(self.times <= cut) for cut in cuts.tolist()]
        units = len(self.units)
        # The first cut at or after each answer's time: the number of cuts before it (as
        # searchsorted(side="left") gives it, a third of the time for a few cuts).
        first = np.zeros(len(self.times), dtype=np.int64)
        for cut in cuts.tolist():
            first += self.times > cut
        under = first < len(cuts)
        added = np.bincount(
            first[under] * units + self.rows[under],
            weights=self._weights[under],
            minlength=len(cuts) * units,
        ).reshape(len(cuts), units)
        keys = np.cumsum(added, axis=0).astype(np.int64)
        return [
            self._alpha_of_keys(keys[n], self.times <= cut, None)
            for n, cut in enumerate(cuts.tolist())
        ]

    def alpha_without(self, mine: np.ndarray) -> tuple[float | None, int]:
        """The alpha of all answers but `mine` (a mask or positions): one annotator's
        answers taken out of the whole queue's counts by subtraction, not counted again.
        Where they are on distinct items (one annotation per item and annotator, as
        annotation_once_per_user keeps them), only those items' rows change, so only
        those are counted again in the tally of rows."""
        if self._keyed:
            units = self.rows[mine]
            seen = np.zeros(len(self.units), dtype=bool)
            seen[units] = True
            if np.count_nonzero(seen) != len(units):  # two on one item: count them all
                theirs = np.bincount(units, weights=self._weights[mine], minlength=len(seen))
                keys = self._keys_all - theirs.astype(np.int64)
                return self._alpha_of_keys(keys, None, mine)
            before = self._keys_all[units]
            after = before - self._weights[mine].astype(np.int64)
            width = len(self._tally_all)
            tally = (
                self._tally_all
                - np.bincount(before, minlength=width)
                + np.bincount(after, minlength=width)
            )
            return self._alpha_of_tally(tally, None, mine)
        return self._alpha_of_dense(self._dense(None, mine))

    # Each unit's row of counts as one number (the counts as digits in base `_base`), so
    # that the distinct rows and how often each occurs come from one bincount. Where that
    # number could grow too large (many values, many answers per item) the rows are
    # compared as rows instead.
    @cached_property
    def _base(self) -> int:
        full = self.counts()[1]
        return int(full.max()) + 1 if full.size else 1

    @cached_property
    def _keyed(self) -> bool:
        return self._base ** len(self.domain) <= MAX_KEYS

    @cached_property
    def _weights(self) -> np.ndarray:
        powers = self._base ** np.arange(len(self.domain), dtype=np.int64)
        return powers[self.codes].astype(np.float64)  # exact: below MAX_KEYS

    @cached_property
    def _keys_all(self) -> np.ndarray:
        keys = np.bincount(self.rows, weights=self._weights, minlength=len(self.units))
        return keys.astype(np.int64)

    @cached_property
    def _tally_all(self) -> np.ndarray:
        return np.bincount(self._keys_all, minlength=1)

    def _dense(self, mask: np.ndarray | None, without: np.ndarray | None) -> np.ndarray:
        counts = self.counts(mask)[1]
        if without is not None:
            counts = counts - self.counts(without)[1]
        return counts[row_totals(counts) >= 2]

    def _alpha_of_keys(
        self, keys: np.ndarray, mask: np.ndarray | None, without: np.ndarray | None
    ) -> tuple[float | None, int]:
        return self._alpha_of_tally(np.bincount(keys, minlength=1), mask, without)

    def _alpha_of_tally(
        self, tally: np.ndarray, mask: np.ndarray | None, without: np.ndarray | None
    ) -> tuple[float | None, int]:
        """Alpha of the count rows numbered by key, `tally[key]` times each."""
        width = len(self.domain)
        present = np.flatnonzero(tally)
        powers = self._base ** np.arange(width, dtype=np.int64)
        distinct = (present[:, None] // powers[None, :]) % self._base
        return _alpha_of_rows(
            self.question, distinct, tally[present], partial(self._dense, mask, without)
        )

    def _alpha_of_dense(self, counts: np.ndarray) -> tuple[float | None, int]:
        if counts.shape[0] == 0:
            return None, 0
        distinct, times = np.unique(counts, axis=0, return_counts=True)
        return _alpha_of_rows(self.question, distinct, times, lambda: counts)


# The most distinct count rows Answers.alpha tells apart by number (a bincount this long).
MAX_KEYS = 1 << 20


# Question.Level's values are krippendorff's names for the levels of measurement.
_KRIPPENDORFF_LEVEL: dict[str, Literal["nominal", "ordinal", "interval", "ratio"]] = {
    Question.Level.NOMINAL: "nominal",
    Question.Level.ORDINAL: "ordinal",
    Question.Level.INTERVAL: "interval",
    Question.Level.RATIO: "ratio",
}


def alpha_from_counts(
    question: Question,
    counts: np.ndarray,
    *,
    alpha: Callable[[], float | None] | None = None,
) -> QuestionAgreement:
    """Alpha over the rows (items) of `counts` with two or more answers (`alpha()` gives
    the figure where the caller has a faster way to it)."""
    counts = counts[row_totals(counts) >= 2]
    agreement = partial(
        QuestionAgreement, key=question.key, level=question.level, items=int(counts.shape[0])
    )
    answers = int(counts.sum())
    if counts.shape[0] == 0:
        return agreement(answers=0, alpha=None, undefined_reason=NO_PAIRS)
    if int((column_totals(counts) > 0).sum()) < 2:
        return agreement(answers=answers, alpha=None, undefined_reason=ONE_VALUE)
    if alpha is None:
        distinct, times = np.unique(counts, axis=0, return_counts=True)
        figure, _ = _alpha_of_rows(question, distinct, times, lambda: counts)
    else:
        figure = alpha()
    totals = column_totals(counts)
    nominal = question.level == Question.Level.NOMINAL
    return agreement(
        answers=answers,
        alpha=figure,
        undefined_reason=None,
        top_share=round(float(totals.max() / answers), 4),
        ac1=round(gwet_ac1(counts), 4) if nominal else None,
    )


def krippendorff_alpha(question: Question, counts: np.ndarray) -> float:
    """krippendorff.alpha over `counts` (rows with 2+ answers, 2+ values in use)."""
    numeric = question.type == Question.Type.RATING
    domain = domain_of(question) if numeric else list(range(counts.shape[1]))
    return float(
        krippendorff.alpha(
            value_counts=counts,
            value_domain=domain,
            level_of_measurement=_KRIPPENDORFF_LEVEL[question.level],
        )
    )


def _alpha_of_rows(
    question: Question,
    distinct: np.ndarray,
    times: np.ndarray,
    counts: Callable[[], np.ndarray],
) -> tuple[float | None, int]:
    """(Alpha rounded to 4 places, or None where undefined; items with 2+ answers) for the
    count matrix made of the rows `distinct`, each occurring `times` times.

    krippendorff.alpha builds an items x values x values array and sums it item by item;
    items with the same counts add the same terms, so the coincidence matrix is summed
    here once per distinct row (exactly, in integers, then divided once per number of
    answers) and the rest is krippendorff's own arithmetic. The two sums can differ in
    the last bits; where that could move the rounded figure (alpha within a hair of a
    rounding tie) krippendorff.alpha is run on the matrix itself (`counts()`), so the
    figure is always the one it gives.
    """
    answered = distinct.sum(axis=1)
    keep = (answered >= 2) & (times > 0)
    distinct, times, answered = distinct[keep], times[keep].astype(np.int64), answered[keep]
    items = int(times.sum())
    if items == 0:
        return None, 0
    totals = (distinct * times[:, None]).sum(axis=0)
    if int((totals > 0).sum()) < 2:
        return None, items
    width = distinct.shape[1]
    pairs = distinct[:, :, None] * distinct[:, None, :] - distinct[:, None, :] * np.eye(
        width, dtype=np.int64
    )
    weighted = pairs * times[:, None, None]
    observed = np.zeros((width, width), dtype=np.float64)
    for others in np.unique(answered - 1).tolist():
        observed += weighted[answered - 1 == others].sum(axis=0) / others
    numeric = question.type == Question.Type.RATING
    domain = np.asarray(domain_of(question) if numeric else range(width))
    n_v = observed.sum(axis=0)
    expected = _kd._random_coincidences(n_v)  # noqa: SLF001 - see the docstring
    metric = _kd._distance_metric(_KRIPPENDORFF_LEVEL[question.level])  # noqa: SLF001
    # n_v is a float array, as krippendorff.alpha itself passes it (its hint says ints).
    distances: np.ndarray = _kd._distances(domain, metric, n_v)  # type: ignore[arg-type]  # noqa: SLF001
    alpha = float(1 - (observed * distances).sum() / (expected * distances).sum())
    scaled = alpha * 10_000
    if abs(scaled - math.floor(scaled) - 0.5) < NEAR_TIE:
        alpha = krippendorff_alpha(question, counts())
    return round(alpha, 4), items


# How close (in units of the 4th decimal) to a rounding tie alpha must come for the
# figure to be taken from krippendorff.alpha itself: far above the few ulps by which the
# two ways of summing differ, far below what any real queue hits often.
NEAR_TIE = 1e-5


# Row and column totals and row maxima of a count matrix (many rows, a few columns): numpy's
# reductions along the short axis take 3-5 times as long; whole numbers, so the same sums.
def row_totals(counts: np.ndarray) -> np.ndarray:
    return np.einsum("ij->i", counts)


def column_totals(counts: np.ndarray) -> np.ndarray:
    return np.einsum("ij->j", counts)


def row_max(counts: np.ndarray) -> np.ndarray:
    if counts.shape[1] == 0:
        return counts.max(axis=1)
    top = counts[:, 0].copy()
    for column in range(1, counts.shape[1]):
        np.maximum(top, counts[:, column], out=top)
    return top


def gwet_ac1(counts: np.ndarray) -> float:
    """Gwet's AC1 over items x values answer counts (rows with 2+ answers; Gwet 2008, for
    several raters and missing answers): observed pairwise agreement corrected by a chance
    agreement that shrinks, unlike alpha's, when one value dominates. Values never given
    are not counted as categories. Needs two values in use."""
    counts = counts[row_totals(counts) >= 2].astype(np.float64)
    raters = row_totals(counts)
    observed = float(np.mean(row_totals(counts * (counts - 1)) / (raters * (raters - 1))))
    used = counts[:, column_totals(counts) > 0]
    prevalence = (used / raters[:, None]).mean(axis=0)
    chance = float((prevalence * (1 - prevalence)).sum() / (used.shape[1] - 1))
    return (observed - chance) / (1 - chance)


def share_of(agreeing: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """`agreeing / totals` per row, 0 where there are no answers: items' agreement from
    `item_agreement_parts`."""
    return np.divide(agreeing, totals, out=np.zeros(len(totals)), where=totals > 0)


def item_agreement_parts(
    question: Question, counts: np.ndarray, tolerance: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (answers agreeing with the most common one, answers); an item's agreement
    is their share (`share_of`). For ordinal, interval and ratio questions, answers within
    `tolerance` of each other (rating value, or choice position) count as agreeing."""
    totals = row_totals(counts)
    if question.level == Question.Level.NOMINAL or tolerance <= 0:
        agreeing = row_max(counts)
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
        agreeing = row_max(around)
    return agreeing, totals
