"""Validation of an annotator's answers against a queue's questions."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from core.storable import INT_MAX, INT_MIN, printable, text_problem
from review.models import Question

MAX_TEXT_ANSWER = 5000
MAX_SECONDS_SPENT = 10_000_000.0  # about 115 days: a claim resumed much later is not timed
# ASCII digits only: str.isdigit() also accepts "²" and "٣", which int() refuses or reads
# as another number.
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,12}", re.ASCII)


class AnswersInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def rating_value(value: Any) -> int | None:
    """A rating answer as a whole number ("4", 4 and 4.0 alike), else None."""
    if (isinstance(value, str) and WHOLE_NUMBER.fullmatch(value.strip())) or (
        isinstance(value, float) and math.isfinite(value) and value.is_integer()
    ):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def validate_answers(questions: Sequence[Question], answers: Any) -> dict[str, Any]:
    """The cleaned answers, or raises AnswersInvalid naming each bad question key.

    Only values the database can hold come out: choices as configured, ratings as 32-bit
    whole numbers within the question's range, texts without NUL or lone surrogates.
    """
    if not isinstance(answers, dict):
        raise AnswersInvalid({"answers": "Must be an object of question key to answer."})
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    known = {q.key for q in questions}
    for key in answers:
        if key not in known:
            errors[printable(str(key))] = "Not a question of this queue."
    for question in questions:
        value = answers.get(question.key)
        if value is None or value == "":
            if question.required:
                errors[question.key] = "This question needs an answer."
            continue
        if question.type == Question.Type.CHOICE:
            if value not in question.choices:
                errors[question.key] = f"Must be one of: {', '.join(map(str, question.choices))}."
                continue
        elif question.type == Question.Type.RATING:
            number = rating_value(value)
            if number is None:
                errors[question.key] = "Must be a whole number."
                continue
            low = INT_MIN if question.min_value is None else question.min_value
            high = INT_MAX if question.max_value is None else question.max_value
            if not low <= number <= high:
                errors[question.key] = f"Must be between {low} and {high}."
                continue
            value = number
        else:
            if not isinstance(value, str):
                errors[question.key] = "Must be text."
                continue
            if len(value) > MAX_TEXT_ANSWER:
                errors[question.key] = f"Must be at most {MAX_TEXT_ANSWER} characters."
                continue
            if problem := text_problem(value):
                errors[question.key] = problem
                continue
        cleaned[question.key] = value
    if errors:
        raise AnswersInvalid(errors)
    return cleaned


def validate_seconds_spent(seconds: float | None) -> float | None:
    """`seconds` if it is a time the annotation can record; raises AnswersInvalid."""
    if seconds is None:
        return None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise AnswersInvalid({"seconds_spent": "Must be a number of seconds."})
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS_SPENT):
        raise AnswersInvalid(
            {"seconds_spent": f"Must be between 0 and {MAX_SECONDS_SPENT:.0f} seconds."}
        )
    return float(seconds)
