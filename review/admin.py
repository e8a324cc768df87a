from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from review import services
from review.claims import agreement_schedule
from review.models import (
    Adjudication,
    AgreementSnapshot,
    Annotation,
    Assignment,
    Item,
    Question,
    Queue,
)
from tenancy.admin import ProjectAdmin
from tenancy.models import Project


class EscapedJSONField(forms.JSONField):
    """Shows JSON with non-ASCII escaped: a refused value holding a lone surrogate is shown
    back as "\\ud800" instead of failing to encode the whole page."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=True, cls=self.encoder)


JSON_AS_ASCII: Mapping[type[models.Field[Any, Any]], Mapping[str, Any]] = {
    models.JSONField: {"form_class": EscapedJSONField}
}


# A project made in admin starts with its default review queues, as one made by
# `create_project` does. The project admin is feedback's; review extends it (feedback knows
# nothing of review).
admin.site.unregister(Project)


@admin.register(Project)
class ProjectWithQueuesAdmin(ProjectAdmin):
    def save_model(self, request: HttpRequest, obj: Project, form: object, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.project_queues_ensure(project=obj)


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 0
    formfield_overrides = JSON_AS_ASCII


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "project",
        "reason",
        "annotations_per_item",
        "min_item_agreement",
        "min_alpha",
        "min_annotator_agreement",
        "is_active",
    ]
    list_filter = ["project", "reason", "is_active"]
    search_fields = ["name", "project__slug"]
    list_select_related = ["project"]
    filter_horizontal = ["members"]
    inlines = [QuestionInline]
    formfield_overrides = JSON_AS_ASCII
    actions = ["recompute_agreement"]

    @admin.action(description="Recompute agreement of the selected queues")
    def recompute_agreement(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        for queue in queryset:
            agreement_schedule(queue.pk)
        self.message_user(request, f"Agreement recomputation scheduled for {queryset.count()}.")


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "queue",
        "reason",
        "priority",
        "status",
        "annotation_count",
        "agreement",
        "agreement_state",
        "decision",
        "held_out",
        "created_at",
    ]
    list_filter = ["status", "agreement_state", "decision", "held_out", "reason", "queue"]
    list_select_related = ["queue", "queue__project"]
    raw_id_fields = ["queue", "label", "generation"]
    readonly_fields = ["agreement", "agreement_state", "decision", "decision_reason"]
    formfield_overrides = JSON_AS_ASCII
    show_full_result_count = False
    actions = ["hold_out"]

    def get_readonly_fields(self, request: HttpRequest, obj: Item | None = None) -> list[str]:
        """An item stays in the queue it was made in: its annotations carry that queue
        (Annotation.queue, what the agreement recompute reads by) and answer its
        questions."""
        fields = list(super().get_readonly_fields(request, obj))
        return fields if obj is None else [*fields, "queue"]

    @admin.action(description="Hold out of training (evaluation split)")
    def hold_out(self, request: HttpRequest, queryset: QuerySet[Item]) -> None:
        count = 0
        for queue_id in queryset.values_list("queue_id", flat=True).distinct():
            ids = list(queryset.filter(queue_id=queue_id).values_list("id", flat=True))
            count += services.items_hold_out(queue=Queue(pk=queue_id), item_ids=ids)
        self.message_user(request, f"{count} item(s) held out.")


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "user", "seconds_spent", "created_at"]
    list_filter = ["queue"]
    list_select_related = ["item", "user"]
    raw_id_fields = ["item", "user"]
    readonly_fields = ["item", "user", "answers", "values", "presentation", "created_at"]
    show_full_result_count = False


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "user", "status", "claimed_at", "expires_at"]
    list_filter = ["status", "queue"]
    list_select_related = ["item", "user"]
    raw_id_fields = ["item", "queue", "user"]
    show_full_result_count = False


@admin.register(Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ["item", "decision", "decided_by", "created_at"]
    list_filter = ["decision"]
    raw_id_fields = ["item", "decided_by"]


@admin.register(AgreementSnapshot)
class AgreementSnapshotAdmin(admin.ModelAdmin):
    list_display = ["queue", "computed_at", "annotations", "seconds"]
    list_filter = ["queue"]
    readonly_fields = ["queue", "computed_at", "annotations", "seconds", "results"]
