"""The export pages (DESIGN.md, "Exports"): start an export, follow it, download its files.

Same rules as `exports/api.py`: `selectors.access_export*` decide who may do what (not a
member of the project: 404; a member without the ML or admin role: 403),
`services.export_job_create` does the one write, and a worker builds the files. The job
page polls its own status partial with htmx while the job is queued or running.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from core.typing import AuthedRequest
from exports import selectors, services
from exports.filters import FiltersInvalid, parse_filters
from exports.forms import ExportForm
from exports.models import ExportJob
from review.models import Queue
from tenancy.access import projects_for_user
from tenancy.models import Project

RECENT_EXPORTS = 50
FINISHED = (ExportJob.Status.DONE, ExportJob.Status.FAILED)
SPLIT_ORDER = ["train", "eval"]
FILTER_ORDER = ["since", "until", "sources", "min_confidence", "min_agreement", "queues", "models"]
# Why labels are not in the training split: manifest["excluded"] keys, in words.
EXCLUSION_REASONS = {
    "filtered_out": "Left out by the filters",
    "in_review": "Still in review",
    "below_confidence": "Below the confidence threshold",
    "rejected_by_review": "Rejected in review",
    "excluded_by_review": "Excluded in review",
    "held_out": "Held out (eval split)",
    "not_for_this_format": "Not usable in this format",
    "high_retry": "High-retry flag",
    "rating": "Explicit rating (kept apart)",
    "inactive": "Superseded",
}


@login_required
@require_http_methods(["GET", "POST"])
def export_list(request: AuthedRequest) -> HttpResponse:
    project: Project | None
    if request.method == "POST":
        project = selectors.access_export_project(request.user, request.POST.get("project", ""))
        form = ExportForm(request.POST, project=project)
        if form.is_valid():
            try:
                filters = parse_filters(form.filters(), project=project)
            except FiltersInvalid as invalid:
                form.add_filter_errors(invalid.errors)
            else:
                job = services.export_job_create(
                    project=project,
                    created_by=request.user,
                    fmt=form.cleaned_data["format"],
                    file_format=form.cleaned_data["file_format"],
                    style=form.cleaned_data["style"],
                    filters=filters,
                    allow_below_policy=form.cleaned_data["allow_below_policy"],
                )
                return redirect("exports:detail", export_id=job.pk)
        return _render_list(request, project=project, form=form, status=400)
    slug = request.GET.get("project")
    project = selectors.access_export_project(request.user, slug) if slug else None
    return _render_list(request, project=project)


@never_cache  # The status changes while the job builds: never show a stale copy.
@login_required
@require_GET
def export_detail(request: HttpRequest, export_id: int) -> HttpResponse:
    job = selectors.access_export(request.user, export_id)
    return render(request, "exports/detail.html", _job_context(job))


@never_cache
@login_required
@require_GET
def export_status(request: HttpRequest, export_id: int) -> HttpResponse:
    """The job page's status partial, which htmx polls until the job is finished."""
    job = selectors.access_export(request.user, export_id)
    return render(request, "exports/detail.html#job", _job_context(job))


@login_required
@require_GET
def export_download(request: HttpRequest, export_id: int, file: str) -> FileResponse:
    return export_file_response(selectors.access_export(request.user, export_id), file)


def export_file_response(job: ExportJob, key: str) -> FileResponse:
    """One file of a finished export as a download, streamed from disk in blocks (constant
    memory); Http404 for an unfinished job or a file it does not have."""
    found = selectors.export_file(job, key)
    return FileResponse(found.path.open("rb"), as_attachment=True, filename=found.download_name)


# Page assembly ------------------------------------------------------------------------------


def _render_list(
    request: HttpRequest,
    *,
    project: Project | None,
    form: ExportForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The form for `project` (default: the first the user may export from) above the
    user's recent exports. A fixed number of queries, however many exports there are."""
    exportable = list(projects_for_user(request.user, selectors.EXPORT_ROLES).order_by("name"))
    if project is None and exportable:
        project = exportable[0]
    if project is not None and form is None:
        form = ExportForm(project=project)
    jobs = list(selectors.exports_for_user(request.user)[:RECENT_EXPORTS])
    context = {"projects": exportable, "project": project, "form": form, "jobs": jobs}
    return render(request, "exports/list.html", context, status=status)


def _job_context(job: ExportJob) -> dict[str, Any]:
    context: dict[str, Any] = {
        "job": job,
        "finished": job.status in FINISHED,
        "timeline": _timeline(job),
        "built_in": (
            _duration(job.finished_at - job.started_at)
            if job.started_at and job.finished_at
            else None
        ),
    }
    if job.status == ExportJob.Status.DONE:
        context.update(_manifest_summary(job))
    return context


def _manifest_summary(job: ExportJob) -> dict[str, Any]:
    manifest = job.manifest
    rows = manifest.get("rows", {})
    # PostgreSQL's jsonb does not keep the manifest's key order: put it back.
    splits = sorted(rows, key=lambda split: _position(SPLIT_ORDER, split))
    by_source = manifest.get("counts_by_source", {})
    sources = sorted({source for counts in by_source.values() for source in counts})
    keys = {name: key for key, name in selectors.export_files(job).items()}
    files = [
        {**entry, "key": keys.get(entry["name"])}
        for entry in manifest.get("files", [])
        if entry["name"] in keys
    ]
    files += [
        {"name": "manifest.json", "key": "manifest", "role": "manifest"},
        {"name": "README.md", "key": "card", "role": "dataset card"},
    ]
    excluded = manifest.get("excluded", {})
    return {
        "rows": [(split, rows[split]) for split in splits],
        "splits": splits,
        "sources": [
            (source, [by_source.get(split, {}).get(source, 0) for split in splits])
            for source in sources
        ],
        "excluded": sorted(
            ((EXCLUSION_REASONS.get(key, key.replace("_", " ")), n) for key, n in excluded.items()),
            key=lambda reason: (-reason[1], reason[0]),
        ),
        "filters": _filters_display(job.project, manifest.get("filters", {})),
        "as_of": _moment(manifest.get("as_of")),
        "built_at": _moment(manifest.get("built_at")),
        "files": files,
        "policy": sorted(manifest.get("policy", {}).items()),
        "quality": manifest.get("quality"),  # None in manifests built before it existed
    }


def _timeline(job: ExportJob) -> list[tuple[str, datetime, str]]:
    """What happened to the job so far, in order: (step, when, how long after the step
    before). An export built in-process finishes before its page first shows, so its
    progress could never be watched: the page says instead what happened, and how fast."""
    steps = [("Queued", job.created_at), ("Started", job.started_at)]
    steps.append(
        ("Failed" if job.status == ExportJob.Status.FAILED else "Finished", job.finished_at)
    )
    timeline, before = [], None
    for step, when in steps:
        if when is None:
            continue
        took = "" if before is None else f"{_duration(when - before)} later"
        timeline.append((step, when, took))
        before = when
    return timeline


def _duration(span: timedelta) -> str:
    seconds = max(span.total_seconds(), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.0f} min"


def _position(order: list[str], key: str) -> tuple[int, str]:
    """Sorts keys as `order` lists them, then any others by name."""
    return (order.index(key) if key in order else len(order), key)


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _filters_display(project: Project, filters: dict[str, Any]) -> list[tuple[str, str]]:
    """The filters in words; queues by name (one query, only when queues were chosen)."""
    names = {"min_confidence": "minimum confidence", "min_agreement": "minimum agreement"}
    queue_names = {}
    if filters.get("queues"):
        queue_names = dict(
            Queue.objects.filter(project=project, pk__in=filters["queues"]).values_list(
                "pk", "name"
            )
        )
    shown = []
    for key, value in sorted(filters.items(), key=lambda item: _position(FILTER_ORDER, item[0])):
        if key == "queues":
            value = [queue_names.get(pk, f"queue {pk}") for pk in value]
        text = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        shown.append((names.get(key, key.replace("_", " ")), text))
    return shown
