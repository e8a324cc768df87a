from django.urls import path

from feedback import api

urlpatterns = [
    path("events", api.EventIngestApi.as_view(), name="api-events"),
    # `path`, not `str`: a session id may hold "/" and is read back percent-encoded.
    path("sessions/<path:session_id>", api.SessionDetailApi.as_view(), name="api-session"),
]
