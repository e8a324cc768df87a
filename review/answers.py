"""Validation of an annotator's answers against a queue's questions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from review.models import Question

MAX_TEXT_ANSWER = 5000


class AnswersInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def validate_answers(questions: Sequence[Question], answers: Any) -> dict[str, Any]:
    """The cleaned answers, or raises AnswersInvalid naming each bad question key."""
    if not isinstance(answers, dict):
        raise AnswersInvalid({"answers": "Must be an object of question key to answer."})
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    known = {q.key for q in questions}
    for key in answers:
        if key not in known:
            errors[str(key)] = "Not a question of this queue."
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
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                errors[question.key] = "Must be a whole number."
                continue
            low, high = question.min_value, question.max_value
            if (low is not None and value < low) or (high is not None and value > high):
                errors[question.key] = f"Must be between {low} and {high}."
                continue
        else:
            if not isinstance(value, str):
                errors[question.key] = "Must be text."
                continue
            if len(value) > MAX_TEXT_ANSWER:
                errors[question.key] = f"Must be at most {MAX_TEXT_ANSWER} characters."
                continue
        cleaned[question.key] = value
    if errors:
        raise AnswersInvalid(errors)
    return cleaned
