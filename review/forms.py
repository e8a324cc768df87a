"""The review pages' forms: the annotator's answer form and the lead's gold form, as the
fields the templates draw (`QuestionField`, `GoldField`, their `Option`s), and the parsing
of what they post. Parsing only reads the posted text; the services validate
(`review.answers`), so the API and the pages refuse the same answers with the same words.

The fields are built by hand rather than as Django forms: a queue's questions are rows,
each drawn as radios, a select, a number or a text area with number-key shortcuts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.http import QueryDict

from core.storable import ID_MAX, text_problem
from review import selectors
from review.agreement import LEFT_RIGHT, domain_of
from review.answers import MAX_SECONDS_SPENT
from review.history import MAX_FLAG_REASON
from review.models import MAX_RATING_POINTS, Item, Question, Queue

# Number keys pick options; more options than this get no key (and ratings a select).
MAX_KEYED_OPTIONS = 9
MAX_FILTER_TEXT = 200  # the lead's text search


@dataclass
class Option:
    value: str
    label: str
    id: str
    checked: bool
    key: str = ""  # the number key that picks it, if any


@dataclass
class QuestionField:
    question: Question
    widget: str  # radios, select, number or textarea
    name: str
    id: str
    value: str
    error: str
    options: list[Option] = field(default_factory=list)


@dataclass
class GoldField:
    question: Question
    name: str
    id: str
    options: list[Option]
    error: str = ""


# The answer form --------------------------------------------------------------------------


def field_name(question: Question) -> str:
    # Prefixed so that no question key can collide with csrfmiddlewaretoken or seconds_spent.
    return f"answer-{question.key}"


def answers_from_post(questions: list[Question], post: QueryDict) -> dict[str, Any]:
    """The posted answers by question key, as strings; a choice is matched back to the
    option it names so non-string options compare equal. Validation is the service's."""
    answers: dict[str, Any] = {}
    for question in questions:
        raw = post.get(field_name(question), "")
        value: Any = raw.strip() if question.type != Question.Type.TEXT else raw
        if question.type == Question.Type.CHOICE:
            value = next((c for c in question.choices if str(c) == value), value)
        answers[question.key] = value
    return answers


def seconds_from_post(raw: str | None) -> float | None:
    try:
        seconds = float(raw or "")
    except ValueError:
        return None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS_SPENT:
        return None  # the page's timing is best effort: a bad figure is dropped, not refused
    return round(seconds, 1)


class _StorableText(forms.CharField):
    """A CharField that also refuses what PostgreSQL cannot store (NUL is refused by
    CharField itself; lone surrogates here)."""

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and (problem := text_problem(value)):
            raise forms.ValidationError(problem)


class SkipForm(forms.Form):
    skip_reason = _StorableText(max_length=500, required=False, label="Reason (optional)")


class FlagForm(forms.Form):
    reason = _StorableText(max_length=MAX_FLAG_REASON, label="What is wrong with this item?")


def question_fields(
    questions: list[Question], answers: dict[str, Any], errors: dict[str, str]
) -> list[QuestionField]:
    fields = []
    for question in questions:
        base = f"q-{question.key}"
        given = answers.get(question.key)
        value = "" if given is None else str(given)
        widget, options = "textarea", []
        if question.type == Question.Type.CHOICE:
            widget = "radios"
            choices = [str(c) for c in question.choices]
            options = [
                Option(
                    value=c,
                    label=c,
                    id=f"{base}-{n}",
                    checked=c == value,
                    key=str(n) if n <= MAX_KEYED_OPTIONS else "",
                )
                for n, c in enumerate(choices, start=1)
            ]
        elif question.type == Question.Type.RATING:
            widget, options = rating_widget(question, base, value)
        fields.append(
            QuestionField(
                question=question,
                widget=widget,
                name=field_name(question),
                id=base,
                value=value,
                error=errors.get(question.key, ""),
                options=options,
            )
        )
    return fields


def rating_widget(question: Question, base: str, value: str) -> tuple[str, list[Option]]:
    low, high = question.min_value, question.max_value
    if low is None or high is None or high < low or high - low >= MAX_RATING_POINTS:
        return "number", []
    values = [str(v) for v in range(low, high + 1)]
    if len(values) > MAX_KEYED_OPTIONS + 1:
        return "select", [
            Option(value=v, label=v, id=f"{base}-{v}", checked=v == value) for v in values
        ]
    # A 0..9 scale is picked by its own digit; other short scales by position.
    by_digit = low >= 0 and high <= 9
    return "radios", [
        Option(
            value=v,
            label=v,
            id=f"{base}-{n}",
            checked=v == value,
            key=v if by_digit else (str(n) if n <= MAX_KEYED_OPTIONS else ""),
        )
        for n, v in enumerate(values, start=1)
    ]


# The lead's forms: adjudication, gold and held out ------------------------------------------


def field_error(error: ValueError, default: str) -> tuple[str, str]:
    """Services word their errors "field: message"; split that for the form."""
    name, sep, message = str(error).partition(": ")
    return (name, message) if sep and name.isidentifier() else (default, str(error))


def share_from_post(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError("share: must be a number above 0 and at most 1.") from None


def item_ids_from_post(raw: list[str]) -> list[int]:
    if not raw:
        raise ValueError("item_ids: check at least one item.")
    try:
        ids = [int(value) for value in raw]
    except ValueError:
        raise ValueError("item_ids: must be item numbers.") from None
    if not all(1 <= n <= ID_MAX for n in ids):
        raise ValueError("item_ids: must be item numbers.")
    return ids


def gold_from_post(questions: list[Question], post: QueryDict) -> dict[str, Any]:
    """Known answers from `gold-<key>` fields, blanks left out. Values are matched back to
    the question's domain so ratings compare as numbers; unknown keys are passed on for
    the service to name."""
    by_key = {q.key: q for q in questions}
    answers: dict[str, Any] = {}
    for name, raw in post.items():
        if not name.startswith("gold-") or not isinstance(raw, str) or not raw.strip():
            continue
        key, value = name.removeprefix("gold-"), raw.strip()
        question = by_key.get(key)
        if question is not None:
            value = next((v for v in domain_of(question) if str(v) == value), value)
        answers[key] = value
    return answers


def gold_field(question: Question, item: Item, current: Any, errors: dict[str, str]) -> GoldField:
    base = f"gold-{item.pk}-{question.key}"
    chosen = "" if current is None else str(current)
    return GoldField(
        question=question,
        name=f"gold-{question.key}",
        id=base,
        options=[
            Option(
                value=str(v),
                label=str(v).replace("_", " "),
                id=f"{base}-{n}",
                checked=str(v) == chosen,
            )
            for n, v in enumerate(gold_choices(question, item))
        ],
        error=errors.get(question.key, ""),
    )


def gold_choices(question: Question, item: Item) -> list[Any]:
    """The values a gold answer can take for this item: as annotations store them, so
    left / right become chosen / rejected (derived pairs) or response 1 / 2 (free pairs)."""
    domain = domain_of(question)
    if question.type != Question.Type.CHOICE or not any(c in LEFT_RIGHT for c in question.choices):
        return domain
    if item.is_label_pair:
        drop = {*LEFT_RIGHT, "response_1", "response_2"}
    elif item.is_free_pair:
        drop = {*LEFT_RIGHT, "chosen", "rejected"}
    else:
        drop = {"chosen", "rejected", "response_1", "response_2"}
    return [v for v in domain if v not in drop]


# The lead's filters of a queue's items ------------------------------------------------------


class ItemFilterForm(forms.Form):
    """The item list's filters, from the query string (so a filtered list is a link to
    share). A bad value is a form error naming its field, never a silent "all items"."""

    show = forms.ChoiceField(
        label="Show",
        required=False,
        choices=[(key, label) for key, (label, _) in selectors.LEAD_ITEM_FILTERS.items()],
    )
    q = forms.CharField(label="Text", required=False, max_length=MAX_FILTER_TEXT)
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *Item.Status.choices]
    )
    verdict = forms.ChoiceField(
        label="Verdict",
        required=False,
        choices=[("", "Any verdict")]
        + [(key, label) for key, (label, _) in selectors.LEAD_ITEM_VERDICTS.items()],
    )
    flagged = forms.ChoiceField(
        label="Flags",
        required=False,
        choices=[("", "Flagged or not"), *selectors.LEAD_ITEM_FLAGGED.items()],
    )
    annotator = forms.CharField(label="Answered by", required=False, max_length=150)

    def __init__(self, data: QueryDict, *, queue: Queue) -> None:
        super().__init__(data)
        self.queue = queue

    def clean_q(self) -> str:
        text: str = self.cleaned_data["q"]
        if problem := text_problem(text):
            raise forms.ValidationError(problem)
        return text

    def clean_annotator(self) -> int | None:
        name: str = self.cleaned_data["annotator"]
        if not name:
            return None
        if text_problem(name) or (user_id := selectors.queue_annotator(self.queue, name)) is None:
            raise forms.ValidationError("No annotator of this queue has that username.")
        return user_id

    def filters(self) -> selectors.ItemFilters:
        """The valid filters (call after `is_valid()`); with errors, no filter at all."""
        if not self.is_valid():
            return selectors.ItemFilters()
        data = self.cleaned_data
        return selectors.ItemFilters(
            show=data["show"] or "all",
            text=data["q"],
            status=data["status"],
            verdict=data["verdict"],
            flagged=data["flagged"],
            annotator=data["annotator"],
        )

    def query(self) -> dict[str, str]:
        """The valid filters as query-string values (blank ones left out), for links and
        for forms that post back to the same list."""
        if not self.is_valid():
            return {}
        return {
            name: str(self.data[name])
            for name in self.fields
            if self.cleaned_data.get(name) not in (None, "") and name in self.data
            if not (name == "show" and self.cleaned_data[name] == "all")
        }
