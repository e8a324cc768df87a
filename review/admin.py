from __future__ import annotations

from django.contrib import admin

from review.models import Item, Question, Queue


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 0


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "project",
        "reason",
        "annotations_per_item",
        "min_item_agreement",
        "min_alpha",
        "is_active",
    ]
    list_filter = ["project", "reason", "is_active"]
    search_fields = ["name", "project__slug"]
    list_select_related = ["project"]
    filter_horizontal = ["members"]
    inlines = [QuestionInline]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "queue", "reason", "priority", "status", "annotation_count", "created_at"]
    list_filter = ["status", "reason", "queue__project", "queue"]
    list_select_related = ["queue", "queue__project"]
    raw_id_fields = ["queue", "label", "generation"]
    show_full_result_count = False
