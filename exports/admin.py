from __future__ import annotations

from django.contrib import admin

from exports.models import ExportJob


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "format",
        "file_format",
        "style",
        "status",
        "progress",
        "rows",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "format", "file_format", "project"]
    list_select_related = ["project", "created_by"]
    readonly_fields = [f.name for f in ExportJob._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False  # exports start from the export page, the API or `manage.py export`
