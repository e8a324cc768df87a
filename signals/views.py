"""The Signals pages of a project, for its leads, ML engineers and admins (anyone else, an
unknown slug included, gets 404 alike, as from the API): the signals over time and by
group, the comparison of two groups or periods, and a CSV of every table.

Each page reads the rollups in a fixed number of queries (signals/selectors.py); bad
parameters are a 400 with the form naming the field.
"""

from __future__ import annotations

import csv
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.typing import AuthedRequest
from feedback.signals import PATTERN_METADATA_KEY, PATTERN_WORDS
from signals import figures, selectors
from signals.forms import CompareForm, SignalsForm, clipped
from tenancy.access import READ_ROLES, access_project
from tenancy.models import Project


def _signals(
    request: AuthedRequest, slug: str, only: str | None = None
) -> tuple[Project, SignalsForm, Any]:
    project = access_project(request.user, slug, READ_ROLES)
    form = SignalsForm(clipped(request.GET), project=project)
    if not form.is_valid():
        return project, form, None
    data = form.cleaned_data
    view = selectors.signals_view(
        project,
        bucket=data["bucket"],
        by=data["by"],
        date_from=data["from"],
        date_to=data["to"],
        groups=data["group"],
        only=only,
    )
    return project, form, view


@login_required
@require_GET
def signals_page(request: AuthedRequest, slug: str) -> HttpResponse:
    project, form, view = _signals(request, slug)
    context = {
        "project": project,
        "form": form,
        "view": view,
        "query": clipped(request.GET).urlencode(),
        "feature_key": selectors.feature_key(project) if view and view.by == "feature" else "",
        "pattern_key": PATTERN_METADATA_KEY,
        "pattern_words": PATTERN_WORDS,
    }
    return render(request, "signals/signals.html", context, status=400 if view is None else 200)


@login_required
@require_GET
def signals_csv(request: AuthedRequest, slug: str, table: str) -> HttpResponse:
    """One section's table as CSV: the page's rows and columns, rates as fractions."""
    if table not in figures.SECTION_SLUGS:
        raise Http404("No such table.")
    project, form, view = _signals(request, slug, only=table)
    if view is None:
        return _form_errors(form)
    (section,) = [s for s in view.sections if s.section.slug == table]
    response = _csv_response(f"{project.slug}-signals-{table}-{view.bucket}.csv")
    writer = csv.writer(response)
    writer.writerow(["bucket", "group", *(m.key for m in section.section.columns)])
    for row in section.rows:
        writer.writerow([row.bucket.isoformat(), _text(row.group), *(c.csv for c in row.cells)])
    return response


def _compare(request: AuthedRequest, slug: str) -> tuple[Project, CompareForm, Any]:
    project = access_project(request.user, slug, READ_ROLES)
    form = CompareForm(clipped(request.GET), project=project)
    if not form.is_valid():
        return project, form, None
    data = form.cleaned_data
    result = selectors.comparison(
        project,
        by=data["by"],
        a=data["a"],
        b=data["b"],
        a_range=(data["from"], data["to"]),
        b_range=(data["b_from"], data["b_to"]),
    )
    return project, form, result


@login_required
@require_GET
def compare_page(request: AuthedRequest, slug: str) -> HttpResponse:
    project, form, result = _compare(request, slug)
    context = {
        "project": project,
        "form": form,
        "comparison": result,
        "query": clipped(request.GET).urlencode(),
    }
    return render(request, "signals/compare.html", context, status=400 if result is None else 200)


@login_required
@require_GET
def compare_csv(request: AuthedRequest, slug: str) -> HttpResponse:
    project, form, result = _compare(request, slug)
    if result is None:
        return _form_errors(form)
    response = _csv_response(f"{project.slug}-signals-comparison.csv")
    writer = csv.writer(response)
    writer.writerow(
        [
            "measure",
            "a_group",
            "a_from",
            "a_to",
            "a",
            "b_group",
            "b_from",
            "b_to",
            "b",
            "difference",
            "low",
            "high",
            "verdict",
        ]
    )
    sides = []
    for side in (result.a, result.b):
        sides.append(
            [_text(side.group or ""), side.date_from.isoformat(), side.date_to.isoformat()]
        )
    for row in result.rows:
        difference = row.difference
        writer.writerow(
            [
                row.measure.key,
                *sides[0],
                row.a.csv,
                *sides[1],
                row.b.csv,
                f"{difference.estimate:.4f}" if difference else "",
                f"{difference.low:.4f}" if difference else "",
                f"{difference.high:.4f}" if difference else "",
                row.verdict,
            ]
        )
    return response


def _csv_response(filename: str) -> HttpResponse:
    return HttpResponse(
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _text(value: str) -> str:
    """A text cell a spreadsheet will not run: group names come from the product's metadata,
    and "=HYPERLINK(...)" in a cell is a formula to Excel (OWASP's CSV injection advice)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _form_errors(form: SignalsForm | CompareForm) -> HttpResponse:
    lines = [f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items()]
    return HttpResponse(
        "\n".join(lines) + "\n", status=400, content_type="text/plain; charset=utf-8"
    )
