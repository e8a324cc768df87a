from django.urls import path

from feedback import api

urlpatterns = [
    path("events", api.EventIngestApi.as_view(), name="api-events"),
    path("sessions/<str:session_id>", api.SessionDetailApi.as_view(), name="api-session"),
]
