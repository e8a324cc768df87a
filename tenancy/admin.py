from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from tenancy import keys
from tenancy.models import ApiKey, Membership, Project, origin_normalize


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


class OriginsField(forms.Field):
    """A publishable key's origins, one a line, each normalised as browsers send it."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        text = "" if value in self.empty_values else str(value)
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
        data = super().clean() or self.cleaned_data
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

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        fields = ("project", "name", "kind", "allowed_origins", "rate_limit_per_minute")
        if obj is None:
            return fields
        return (*fields, *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        # A key's kind is in its value (glk_ / glpub_): it cannot change.
        return ["kind", *self.readonly_fields]

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke instead: a revoked key stays listed, with when it was last used

    @admin.display(description="Allowed origins")
    def origins(self, obj: ApiKey) -> str:
        return ", ".join(obj.allowed_origins) or "—"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            keys.publishable_origins_forget()  # the origins may have changed
            return
        key, raw = keys.api_key_create(
            project=obj.project,
            name=obj.name,
            created_by=request.user if isinstance(request.user, User) else None,
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
        count = keys.api_keys_revoke(keys=queryset)
        self.message_user(request, f"Revoked {count} key(s).")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__slug"]
    list_select_related = ["user", "project"]
    autocomplete_fields = ["user", "project"]
