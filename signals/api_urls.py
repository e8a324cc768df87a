from django.urls import path

from signals import api

urlpatterns = [
    path(
        "projects/<slug:slug>/signals", api.ProjectSignalsApi.as_view(), name="api-project-signals"
    ),
]
