"""The Signals page's and comparison's parameters (GET forms): bucket, breakdown, date range,
groups. Each refusal names its field; the views answer 400 with the form.

Dates are limited to EARLIEST..LATEST: no event is older than 2000 (ingestion refuses it),
and a far year would overflow the date arithmetic of week buckets.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, cast

from django import forms
from django.http import QueryDict
from django.utils import timezone

from feedback.signals import signal_groups
from tenancy.models import Project

EARLIEST = date(2000, 1, 1)
LATEST = date(2999, 12, 31)
BUCKET_CHOICES = [("day", "Day"), ("week", "Week")]
BY_CHOICES = [
    ("", "Nothing (all together)"),
    ("model", "Model"),
    ("feature", "Feature"),
    ("pattern", "Prompt pattern"),
]
# Django's message repeats the value sent, which may be anything of any length.
NOT_A_CHOICE = {"invalid_choice": "Not one of the choices offered."}
# The page draws the busiest groups unless others are picked: more lines than colours
# would not be told apart.
DEFAULT_GROUPS = 5
MAX_GROUPS = 6
# Days of each bucket the page (and its CSV) shows by default, and at most: a quarter of days,
# five years of weeks (the page stays a few hundred KiB; longer ranges: the API).
DEFAULT_SPAN = {"day": 28, "week": 12 * 7}
MAX_SPAN = {"day": 92, "week": 5 * 366}


def check_dates(form: forms.Form, *names: str) -> None:
    """Refuse each of the dates `names` outside EARLIEST..LATEST, naming every bad one."""
    bad = {
        name: f"Must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}."
        for name in names
        if (value := form.cleaned_data.get(name)) is not None and not EARLIEST <= value <= LATEST
    }
    if bad:
        raise forms.ValidationError(bad)


MAX_VALUE = 256  # longer than any good value (group names are at most 200 characters)


def clipped(data: QueryDict) -> QueryDict:
    """`data` with every value cut to MAX_VALUE characters: a huge value is still refused
    (naming its field), without the page and its links repeating all of it."""
    if all(len(value) <= MAX_VALUE for values in data.lists() for value in values[1]):
        return data
    short = QueryDict(mutable=True)
    for name, values in data.lists():
        short.setlist(name[:MAX_VALUE], [value[:MAX_VALUE] for value in values])
    return short


def _with_defaults(data: Any, defaults: dict[str, str]) -> Any:
    """`data` (a QueryDict) with `defaults` for its missing or empty keys, so the form shows
    the range it was answered for."""
    missing = {name: value for name, value in defaults.items() if not data.get(name)}
    if not missing:
        return data
    data = data.copy()
    for name, value in missing.items():
        data[name] = value
    return data


def _default_range(data: Any, days: int) -> dict[str, str]:
    """`to` today, `from` `days` days up to `to` (when `to` is a good date: a bad one is its
    field's error alone)."""
    end_text = data.get("to") or timezone.localdate().isoformat()
    defaults = {"to": end_text}
    try:
        end = date.fromisoformat(end_text)
    except ValueError:
        return defaults
    if EARLIEST <= end <= LATEST:
        defaults["from"] = max(EARLIEST, end - timedelta(days=days - 1)).isoformat()
    return defaults


class _RangeFields(forms.Form):
    """`from` and `to` (a keyword, so added in __init__), and the checks they share."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from"] = forms.DateField(
            required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
        )
        self.fields["to"] = forms.DateField(
            required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
        )


class SignalsForm(_RangeFields):
    bucket = forms.ChoiceField(
        choices=BUCKET_CHOICES, required=False, label="Buckets of a", error_messages=NOT_A_CHOICE
    )
    by = forms.ChoiceField(
        choices=BY_CHOICES, required=False, label="Broken down by", error_messages=NOT_A_CHOICE
    )
    group = forms.MultipleChoiceField(
        choices=[],
        required=False,
        error_messages=NOT_A_CHOICE,
        label="Groups",
        widget=forms.CheckboxSelectMultiple,
        help_text=f"At most {MAX_GROUPS}; the {DEFAULT_GROUPS} with most generations when "
        "none is picked.",
    )

    def __init__(self, data: Any, *, project: Project) -> None:
        bucket = data.get("bucket") if data.get("bucket") in DEFAULT_SPAN else "day"
        super().__init__(_with_defaults(data, _default_range(data, DEFAULT_SPAN[bucket])))
        by = self.data.get("by", "")
        # The groups of the breakdown asked for (one query), offered as choices.
        self.groups: list[tuple[str, str, int]] = (
            signal_groups(project, by) if by in {"model", "feature", "pattern"} else []
        )
        cast(forms.MultipleChoiceField, self.fields["group"]).choices = [
            (group, f"{label} ({generations})") for group, label, generations in self.groups
        ]

    def group_options(self) -> list[tuple[int, str, str, bool]]:
        """(n, value, label, checked) of each group for the picker: drawn by the template
        as plain checkboxes (Django's widget takes a millisecond each, and a project may
        have hundreds of prompt patterns)."""
        picked = set(self.cleaned_data.get("group") or []) if self.is_valid() else set()
        if not picked:
            picked = set(self.data.getlist("group")) if hasattr(self.data, "getlist") else set()
        return [
            (n, group, f"{label} ({generations})", group in picked)
            for n, (group, label, generations) in enumerate(self.groups)
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        bucket = data.get("bucket") or "day"
        data["bucket"] = bucket
        data["by"] = data.get("by") or None
        check_dates(self, "from", "to")
        end = data.get("to") or timezone.localdate()
        start = data.get("from") or max(EARLIEST, end - timedelta(days=DEFAULT_SPAN[bucket] - 1))
        if start > end:
            raise forms.ValidationError({"from": "Must not be after 'to'."})
        if (end - start).days >= MAX_SPAN[bucket]:
            raise forms.ValidationError(
                {"from": f"At most {MAX_SPAN[bucket]} days of {bucket} buckets on the page."}
            )
        data["from"], data["to"] = start, end
        picked = data.get("group") or []
        if len(picked) > MAX_GROUPS:
            raise forms.ValidationError({"group": f"Pick at most {MAX_GROUPS} groups."})
        if data["by"] is None:
            data["group"] = None
        elif not picked:
            data["group"] = [group for group, _, _ in self.groups[:DEFAULT_GROUPS]]
        return data


class CompareForm(_RangeFields):
    """Two sides, A and B, each a group of the breakdown (or everything) over a period; B's
    period is A's unless given. Two models: a and b differ. Two periods: b_from, b_to."""

    by = forms.ChoiceField(
        choices=BY_CHOICES, required=False, label="Compare groups of", error_messages=NOT_A_CHOICE
    )
    a = forms.ChoiceField(choices=[], required=False, label="A", error_messages=NOT_A_CHOICE)
    b = forms.ChoiceField(choices=[], required=False, label="B", error_messages=NOT_A_CHOICE)

    def __init__(self, data: Any, *, project: Project) -> None:
        by = data.get("by", "")
        groups = signal_groups(project, by) if by in {"model", "feature", "pattern"} else []
        if groups and not (data.get("a") and data.get("b")):
            # The two groups with most generations, shown as picked in the form.
            data = data.copy()
            data["a"] = data.get("a") or groups[0][0]
            data["b"] = data.get("b") or groups[min(1, len(groups) - 1)][0]
        dates = ("from", "to", "b_from", "b_to")
        if by not in {"model", "feature", "pattern"} and not any(data.get(n) for n in dates):
            # Nothing to tell the sides apart but time: the last two weeks (B) against the
            # two before (A).
            today = timezone.localdate()
            defaults = {
                "from": today - timedelta(days=27),
                "to": today - timedelta(days=14),
                "b_from": today - timedelta(days=13),
                "b_to": today,
            }
            data = _with_defaults(data, {n: day.isoformat() for n, day in defaults.items()})
        else:
            data = _with_defaults(data, _default_range(data, DEFAULT_SPAN["day"]))
        super().__init__(data)
        self.fields["from"].label = "A from"
        self.fields["to"].label = "A to"
        self.fields["b_from"] = forms.DateField(
            required=False,
            label="B from",
            widget=forms.DateInput(attrs={"type": "date"}),
            help_text="Empty: A's period.",
        )
        self.fields["b_to"] = forms.DateField(
            required=False, label="B to", widget=forms.DateInput(attrs={"type": "date"})
        )
        self.groups: list[tuple[str, str, int]] = groups
        choices = [(group, f"{label} ({n})") for group, label, n in self.groups]
        cast(forms.ChoiceField, self.fields["a"]).choices = choices
        cast(forms.ChoiceField, self.fields["b"]).choices = choices

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        data["by"] = data.get("by") or None
        check_dates(self, "from", "to", "b_from", "b_to")
        end = data.get("to") or timezone.localdate()
        start = data.get("from") or max(EARLIEST, end - timedelta(days=DEFAULT_SPAN["day"] - 1))
        if start > end:
            raise forms.ValidationError({"from": "Must not be after 'to'."})
        b_start, b_end = data.get("b_from") or start, data.get("b_to") or end
        if data.get("b_from") and not data.get("b_to"):
            # B's period as long as A's, from b_from.
            b_end = min(LATEST, b_start + (end - start))
        if b_start > b_end:
            raise forms.ValidationError({"b_from": "Must not be after 'b_to'."})
        data["from"], data["to"], data["b_from"], data["b_to"] = start, end, b_start, b_end
        if data["by"] is None:
            data["a"] = data["b"] = None
        else:
            data["a"], data["b"] = data.get("a") or "", data.get("b") or ""
        return data
