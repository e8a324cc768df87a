from django.urls import path

from exports import views

app_name = "exports"

urlpatterns = [
    path("", views.export_list, name="list"),
    path("<int:export_id>/", views.export_detail, name="detail"),
    path("<int:export_id>/status", views.export_status, name="status"),
    path("<int:export_id>/download/<str:file>", views.export_download, name="download"),
]
