"""An export's filters (DESIGN.md, "Exports"): parsed and checked the same way for the
web form, the API, the export command and a stored job, each bad filter named in the error."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from core.storable import text_problem
from exports.inputs import field_name
from feedback.models import Label
from tenancy.models import Project

REVIEW_SOURCE = "review"  # free-content pairs judged by people, not derived from behaviour


class FiltersInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class ExportFilters:
    since: datetime | None = None
    until: datetime | None = None
    sources: list[str] = field(default_factory=list)
    min_confidence: float | None = None
    min_agreement: float | None = None
    queues: list[int] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    as_of: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("since", "until", "as_of"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return {key: value for key, value in data.items() if value not in (None, [])}


MAX_LIST = 1000  # queues, models or sources in one filter
MAX_ID = 2**63 - 1  # the largest id a bigint column holds
MAX_MODEL_NAME = 200  # Label.model's column


def _moment(value: Any, name: str, *, end_of_day: bool = False) -> datetime:
    """An aware datetime in UTC. Python cannot hold one before year 1 or after year 9999,
    so "0001-01-01T00:00:00+05:00" (year 0 in UTC) is refused, not stored."""
    if not isinstance(value, str) or len(value) > 40:
        raise FiltersInvalid({name: "Must be an ISO 8601 date or date-time string."})
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FiltersInvalid({name: f"Not an ISO 8601 date: {value!a}."}) from None
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:
        raise FiltersInvalid({name: "Out of range: must be from year 1 to 9999 in UTC."}) from None


def _fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FiltersInvalid({name: "Must be a number from 0 to 1."})
    return float(value)


def _strings(value: Any, name: str, *, max_length: int = MAX_MODEL_NAME) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise FiltersInvalid({name: "Must be a list of strings."})
    if len(value) > MAX_LIST:
        raise FiltersInvalid({name: f"At most {MAX_LIST} values."})
    for text in value:
        if len(text) > max_length:
            raise FiltersInvalid({name: f"Each value at most {max_length} characters."})
        if reason := text_problem(text):
            raise FiltersInvalid({name: reason})
    return sorted(set(value))


def _ids(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise FiltersInvalid({name: "Must be a list of queue ids."})
    if len(value) > MAX_LIST:
        raise FiltersInvalid({name: f"At most {MAX_LIST} values."})
    if out_of_range := [v for v in value if not 1 <= v <= MAX_ID]:
        shown = str(out_of_range[0])
        shown = shown if len(shown) <= 30 else shown[:27] + "..."
        raise FiltersInvalid({name: f"Not a queue id: {shown}."})
    return sorted(set(value))


def parse_filters(raw: Any, *, project: Project) -> ExportFilters:
    """Validated filters, or FiltersInvalid naming each bad filter."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise FiltersInvalid({"filters": "Must be an object."})
    known = {
        "since",
        "until",
        "sources",
        "min_confidence",
        "min_agreement",
        "queues",
        "models",
        "as_of",
    }
    errors = {field_name(key): "Unknown filter." for key in raw if key not in known}
    values: dict[str, Any] = {}
    parsers = {
        "since": lambda v: _moment(v, "since"),
        "until": lambda v: _moment(v, "until", end_of_day=True),
        "as_of": lambda v: _moment(v, "as_of", end_of_day=True),
        "min_confidence": lambda v: _fraction(v, "min_confidence"),
        "min_agreement": lambda v: _fraction(v, "min_agreement"),
        "sources": lambda v: _strings(v, "sources", max_length=40),
        "models": lambda v: _strings(v, "models"),
    }
    for key, parse in parsers.items():
        if raw.get(key) is not None:
            try:
                values[key] = parse(raw[key])
            except FiltersInvalid as invalid:
                errors.update(invalid.errors)
    known_sources = [*Label.Source.values, REVIEW_SOURCE]
    unknown_sources = set(values.get("sources", [])) - set(known_sources)
    if unknown_sources:
        shown = ", ".join(sorted(unknown_sources))
        errors["sources"] = f"Unknown: {shown}. Use {known_sources}."
    if raw.get("queues") is not None:
        try:
            queues = _ids(raw["queues"], "queues")
        except FiltersInvalid as invalid:
            errors.update(invalid.errors)
        else:
            found = set(project.queues.filter(pk__in=queues).values_list("pk", flat=True))
            if missing := sorted(set(queues) - found):
                shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
                errors["queues"] = f"Not queues of project {project.slug}: [{shown}]."
            values["queues"] = sorted(found)
    if "since" in values and "until" in values and values["since"] > values["until"]:
        errors["since"] = "Must be before until."
    if errors:
        raise FiltersInvalid(errors)
    return ExportFilters(**values)
