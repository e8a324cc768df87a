from __future__ import annotations

from django.contrib import admin
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from feedback import labelling
from feedback.models import (
    Event,
    Generation,
    Label,
    PromptPattern,
    RoutingPolicy,
    Session,
)
from feedback.quality import project_quality


class LargeTableAdmin(admin.ModelAdmin):
    """Tables that grow to millions of rows: no full COUNT(*), no dropdown of related rows."""

    show_full_result_count = False
    list_per_page = 50


class DerivationFailedFilter(admin.SimpleListFilter):
    title = "derivation"
    parameter_name = "derivation"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [("failing", "Failing"), ("pending", "Pending"), ("derived", "Up to date")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Session]) -> QuerySet[Session]:
        pending = Q(changes__gt=F("derived_changes"))
        if self.value() == "failing":
            return queryset.filter(derive_failures__gt=0)
        if self.value() == "pending":
            return queryset.filter(pending)
        if self.value() == "derived":
            return queryset.exclude(pending)
        return queryset


@admin.register(Session)
class SessionAdmin(LargeTableAdmin):
    list_display = [
        "external_id",
        "project",
        "user_ref",
        "outcome",
        "retries",
        "last_event_at",
        "derive_failures",
        "derive_retry_at",
    ]
    list_filter = [DerivationFailedFilter, "outcome", "project"]
    search_fields = ["=external_id", "=user_ref"]
    list_select_related = ["project"]
    raw_id_fields = ["project"]
    date_hierarchy = "last_event_at"
    readonly_fields = ["derived_at", "derive_failures", "derive_error", "derive_retry_at"]
    actions = ["retry_derivation"]

    @admin.action(description="Retry derivation of the selected sessions now")
    def retry_derivation(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        count = labelling.sessions_retry_derivation(sessions=queryset)
        self.message_user(request, f"{count} failed session(s) will be derived again now.")


@admin.register(Generation)
class GenerationAdmin(LargeTableAdmin):
    list_display = ["external_id", "project", "session", "model", "replaces_ref", "created_at"]
    list_filter = ["project", "model"]
    search_fields = ["=external_id", "=session__external_id"]
    list_select_related = ["project", "session"]
    raw_id_fields = ["project", "session", "replaces"]


@admin.register(Event)
class EventAdmin(LargeTableAdmin):
    """The event log is append-only: readable here, never editable."""

    list_display = ["client_id", "type", "project", "session", "generation_ref", "timestamp"]
    list_filter = ["type", "project"]
    search_fields = ["=client_id", "=session__external_id", "=generation_ref"]
    list_select_related = ["project", "session"]
    raw_id_fields = ["project", "session", "generation"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "project",
        "confidence_threshold",
        "target_precision",
        "edit_ratio_min",
        "edit_ratio_max",
        "retry_threshold",
        "qa_sample_rate",
        "sends_outcome_events",
        "inactivity_timeout_minutes",
        "half_life_days",
        "updated_at",
    ]
    list_select_related = ["project"]
    actions = ["rederive"]
    readonly_fields = ["quality_summary"]
    fieldsets = [
        (None, {"fields": ["project"]}),
        ("Edits", {"fields": ["edit_ratio_min", "edit_ratio_max"]}),
        ("Routing", {"fields": ["confidence_threshold", "retry_threshold", "qa_sample_rate"]}),
        ("Sessions", {"fields": ["sends_outcome_events", "inactivity_timeout_minutes"]}),
        (
            "Weights",
            {
                "fields": [
                    "half_life_days",
                    "weight_edit",
                    "weight_regenerate",
                    "weight_copy_share",
                    "weight_completed",
                    "weight_abandoned",
                    "weight_rating",
                    "weight_review",
                ]
            },
        ),
        (
            "Measured precision",
            {
                "fields": [
                    "target_precision",
                    "min_verdicts",
                    "min_human_share",
                    "quality_feature_key",
                    "drift_tolerance",
                    "quality_summary",
                ],
                "description": "People's verdicts calibrate each rule and route it by the "
                "target precision; see docs/quality.md.",
            },
        ),
    ]

    @admin.display(description="Per rule (overall)")
    def quality_summary(self, obj: RoutingPolicy) -> str:
        """Each rule's overall precision from people's verdicts, QA sample and routed apart,
        and the collapse guard's warnings (feedback/quality.py; a few aggregate queries)."""
        if obj.pk is None:
            return "–"
        report = project_quality(obj.project)
        rows = format_html_join(
            "",
            "<tr><th scope='row'>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    cell.rule,
                    "QA sample" if cell.source == "qa_sample" else "routed",
                    cell.verdicts,
                    "–" if cell.precision is None else f"{cell.precision:.3f}",
                    "–" if cell.low is None else f"{cell.low:.3f} – {cell.high:.3f}",
                )
                for cell in report.cells
                if not cell.segment
            ),
        )
        warnings = format_html_join(
            "", "<li>{}</li>", ((w.message,) for w in report.warnings)
        ) or format_html("<li>{}</li>", "None.")
        return format_html(
            "<p>Target precision {}; a cell decides routing from {} verdicts. QA-sample "
            "verdicts are an unbiased sample of auto-accepted labels; routed ones were "
            "doubtful, so they run lower.</p>"
            "<table><thead><tr><th>Rule</th><th>Source</th><th>Verdicts</th>"
            "<th>Precision</th><th>95% interval</th></tr></thead><tbody>{}</tbody></table>"
            "<p>Warnings:</p><ul>{}</ul>",
            report.target,
            report.min_verdicts,
            rows or format_html("<tr><td colspan='5'>{}</td></tr>", "No verdicts yet."),
            warnings,
        )

    @admin.action(description="Re-derive all labels of the selected projects")
    def rederive(self, request: HttpRequest, queryset: QuerySet[RoutingPolicy]) -> None:
        count = labelling.project_rederive(projects=[p.project for p in queryset])
        self.message_user(request, f"{count} session(s) queued for re-derivation.")


@admin.register(Label)
class LabelAdmin(LargeTableAdmin):
    list_display = [
        "id",
        "kind",
        "source",
        "rule",
        "confidence",
        "weight",
        "needs_review",
        "review_reason",
        "review_outcome",
        "active",
        "project",
        "occurred_at",
    ]
    list_filter = [
        "kind",
        "source",
        "rule",
        "needs_review",
        "review_reason",
        "review_outcome",
        "active",
        "project",
    ]
    search_fields = ["=session__external_id", "=generation__external_id"]
    list_select_related = ["project"]
    raw_id_fields = ["project", "session", "generation", "other_generation"]
    readonly_fields = [
        f.name for f in Label._meta.fields if f.name not in ("review_outcome", "review_note")
    ]


@admin.register(PromptPattern)
class PromptPatternAdmin(admin.ModelAdmin):
    """Names of prompt patterns on the Signals page (keys as the page shows them: "tpl:..."
    for a template the product sends, "txt:..." for the first words of the prompt)."""

    list_display = ("name", "key", "project")
    list_filter = ("project",)
    search_fields = ("name", "key")
