from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from feedback import labelling, services
from feedback.models import (
    ApiKey,
    Event,
    Generation,
    Label,
    Membership,
    Project,
    RoutingPolicy,
    Session,
    origin_normalize,
)
from feedback.quality import project_quality


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]
    inlines = [MembershipInline]

    def save_model(self, request: HttpRequest, obj: Project, form: object, change: bool) -> None:
        super().save_model(request, obj, form, change)
        RoutingPolicy.objects.get_or_create(project=obj)  # every project has its policy


class OriginsField(forms.CharField):
    """A publishable key's origins, one a line, each normalised as browsers send it."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value) or ""
        origins: list[str] = []
        problems: list[str] = []
        for line in text.replace(",", "\n").splitlines():
            if not line.strip():
                continue
            try:
                origin = origin_normalize(line)
            except ValidationError as error:
                problems.extend(error.messages)
                continue
            if origin not in origins:
                origins.append(origin)
        if problems:
            raise ValidationError(problems)
        return origins


class ApiKeyForm(forms.ModelForm):
    kind = forms.ChoiceField(
        choices=ApiKey.Kind.choices,
        initial=ApiKey.Kind.SECRET,
        required=False,
        help_text="Secret: for your servers, every event type. Publishable: for web pages, "
        "browser events only, from the origins listed below.",
    )
    allowed_origins = OriginsField(
        required=False,
        help_text="Publishable keys only: one origin a line, like https://app.example.com or "
        "http://127.0.0.1:8000 (scheme, host and port; no path).",
    )

    class Meta:
        model = ApiKey
        fields = ["project", "name", "kind", "allowed_origins", "rate_limit_per_minute"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "kind" in self.fields:  # absent once the key exists: its kind cannot change
            data["kind"] = data.get("kind") or ApiKey.Kind.SECRET
        kind = data.get("kind") or self.instance.kind
        origins = data.get("allowed_origins") or []
        if "allowed_origins" not in self.errors:
            if kind == ApiKey.Kind.PUBLISHABLE and not origins:
                self.add_error("allowed_origins", "A publishable key needs at least one origin.")
            elif kind == ApiKey.Kind.SECRET and origins:
                self.add_error("allowed_origins", "Only publishable keys have origins.")
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = [
        "prefix",
        "name",
        "project",
        "kind",
        "origins",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["project", "kind", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "project__slug"]
    list_select_related = ["project"]
    readonly_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        fields = ["project", "name", "kind", "allowed_origins", "rate_limit_per_minute"]
        if obj is None:
            return fields
        return [*fields, *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        # A key's kind is in its value (glk_ / glpub_): it cannot change.
        return ["kind", *self.readonly_fields]

    @admin.display(description="Allowed origins")
    def origins(self, obj: ApiKey) -> str:
        return ", ".join(obj.allowed_origins) or "—"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            services.publishable_origins_forget()  # the origins may have changed
            return
        key, raw = services.api_key_create(
            project=obj.project,
            name=obj.name,
            created_by=request.user,
            publishable=obj.kind == ApiKey.Kind.PUBLISHABLE,
            origins=obj.allowed_origins,
            rate_limit_per_minute=obj.rate_limit_per_minute or None,
        )
        obj.pk = key.pk
        messages.warning(
            request,
            f"New {key.get_kind_display().lower()} API key (copy it now, it is not stored and "
            f"will not be shown again): {raw}",
        )

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = services.api_keys_revoke(keys=queryset)
        self.message_user(request, f"Revoked {count} key(s).")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__slug"]
    list_select_related = ["user", "project"]
    autocomplete_fields = ["user", "project"]


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
