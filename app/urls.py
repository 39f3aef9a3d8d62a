"""HTTP routes of the API; the WebSocket routes are in app.voice.ws.routing."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView

from app.voice.http import errors, views

urlpatterns = [
    path("token", views.TokenView.as_view(), name="token"),
    path("session", views.SessionCreateView.as_view(), name="session-create"),
    path("session/<str:session_id>", views.SessionDetailView.as_view(), name="session-detail"),
    path("transcripts", views.SessionListView.as_view(), name="session-list"),
    path("transcripts/<str:session_id>", views.TranscriptView.as_view(), name="transcripts"),
    path("transcripts/<str:session_id>/export.json", views.TranscriptJsonExportView.as_view(), name="export-json"),
    path("transcripts/<str:session_id>/export.vtt", views.TranscriptVttExportView.as_view(), name="export-vtt"),
    path("healthz", views.LivenessView.as_view(), name="liveness"),
    path("readyz", views.ReadinessView.as_view(), name="readiness"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    # Last: anything else is a JSON 404 (Django's own 404 page is HTML when DEBUG is on).
    re_path(r"^", errors.endpoint_not_found),
]

# Errors raised outside DRF views (e.g. a disallowed Host header) keep the one error shape.
# No handler404: the catch-all route above answers every unknown path.
handler400 = "app.voice.http.errors.bad_request"
handler403 = "app.voice.http.errors.forbidden"
handler500 = "app.voice.http.errors.server_error"
