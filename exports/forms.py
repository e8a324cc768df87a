"""The export page's form: what to export and which labels (DESIGN.md, "Exports").

The form checks types and ranges; `filters()` turns its values into the raw filters of
the API, which `exports.filters.parse_filters` has the last word on (as for the API).
"""

from __future__ import annotations

from typing import Any, cast

from django import forms

from exports.filters import REVIEW_SOURCE
from exports.models import ExportJob
from feedback.models import Label
from tenancy.models import Project

DATE = {"type": "date"}
FRACTION = {"step": "0.05", "inputmode": "decimal"}


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        choices=ExportJob.Format.choices, initial=ExportJob.Format.DPO, widget=forms.RadioSelect
    )
    file_format = forms.ChoiceField(
        label="File format",
        choices=ExportJob.FileFormat.choices,
        initial=ExportJob.FileFormat.JSONL,
        widget=forms.RadioSelect,
    )
    style = forms.ChoiceField(
        choices=ExportJob.Style.choices, initial=ExportJob.Style.STANDARD, widget=forms.RadioSelect
    )
    since = forms.DateField(
        required=False,
        help_text="Labels from this day on.",
        widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"),
    )
    until = forms.DateField(
        required=False,
        help_text="Labels up to the end of this day.",
        widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"),
    )
    sources = forms.MultipleChoiceField(
        required=False,
        choices=[*Label.Source.choices, (REVIEW_SOURCE, "Review (pairs judged by people)")],
        help_text="None ticked: every source.",
        widget=forms.CheckboxSelectMultiple,
    )
    min_confidence = forms.FloatField(
        label="Minimum confidence",
        required=False,
        min_value=0,
        max_value=1,
        help_text="0 to 1. Labels that review accepted are held to agreement instead.",
        widget=forms.NumberInput(attrs=FRACTION),
    )
    min_agreement = forms.FloatField(
        label="Minimum agreement",
        required=False,
        min_value=0,
        max_value=1,
        help_text="0 to 1, for reviewed labels.",
        widget=forms.NumberInput(attrs=FRACTION),
    )
    queues = forms.TypedMultipleChoiceField(
        required=False,
        coerce=int,
        help_text="Only labels reviewed in these queues. None ticked: no such limit.",
        widget=forms.CheckboxSelectMultiple,
    )
    models = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Comma-separated model names, e.g. acme-chat-2, acme-chat-3.",
    )
    as_of = forms.DateField(
        label="As of",
        required=False,
        help_text="Recency weights are measured from the end of this day "
        "(default: the newest label exported).",
        widget=forms.DateInput(attrs=DATE, format="%Y-%m-%d"),
    )

    allow_below_policy = forms.BooleanField(
        label="Build even if below the project's policy",
        required=False,
        help_text="An export with too few human-verified rows, or an estimated precision "
        "below the project's target, fails unless this is ticked; the manifest then says so.",
    )

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        queues = cast(forms.TypedMultipleChoiceField, self.fields["queues"])  # declared above
        queues.choices = list(project.queues.order_by("name", "pk").values_list("pk", "name"))

    def clean_models(self) -> list[str]:
        names = (name.strip() for name in self.cleaned_data["models"].split(","))
        return [name for name in names if name]

    def filters(self) -> dict[str, Any]:
        """The filters given, shaped as the API's `filters` object (unset ones left out).
        Call after is_valid()."""
        data, raw = self.cleaned_data, {}
        for name in ("since", "until", "as_of"):
            if data.get(name) is not None:
                raw[name] = data[name].isoformat()
        for name in ("min_confidence", "min_agreement"):
            if data.get(name) is not None:
                raw[name] = data[name]
        for name in ("sources", "queues", "models"):
            if data.get(name):
                raw[name] = list(data[name])
        return raw

    def add_filter_errors(self, errors: dict[str, str]) -> None:
        """Show parse_filters' errors next to the field each one names."""
        for name, message in errors.items():
            self.add_error(name if name in self.fields else None, message)
