from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from feedback import services
from feedback.models import ApiKey, Event, Generation, Membership, Project, Session


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "project", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["project", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "project__slug"]
    list_select_related = ["project"]
    readonly_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return ["project", "name", "rate_limit_per_minute"]
        return ["project", "name", "rate_limit_per_minute", *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = services.api_key_create(
            project=obj.project, name=obj.name, created_by=request.user
        )
        if obj.rate_limit_per_minute:
            key.rate_limit_per_minute = obj.rate_limit_per_minute
            key.save(update_fields=["rate_limit_per_minute"])
        obj.pk = key.pk
        messages.warning(
            request,
            f"New API key (copy it now, it is not stored and will not be shown again): {raw}",
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


@admin.register(Session)
class SessionAdmin(LargeTableAdmin):
    list_display = ["external_id", "project", "user_ref", "outcome", "last_event_at"]
    list_filter = ["outcome", "project"]
    search_fields = ["=external_id", "=user_ref"]
    list_select_related = ["project"]
    raw_id_fields = ["project"]
    date_hierarchy = "last_event_at"


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
