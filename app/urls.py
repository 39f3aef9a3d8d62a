from django.urls import path

from app.voice import views

urlpatterns = [
    path("token", views.TokenView.as_view(), name="token"),
    path("session", views.SessionCreateView.as_view(), name="session-create"),
    path("session/<str:session_id>", views.SessionDetailView.as_view(), name="session-detail"),
    path("transcripts", views.SessionListView.as_view(), name="session-list"),
    path("transcripts/<str:session_id>", views.TranscriptView.as_view(), name="transcripts"),
    path("healthz", views.liveness, name="liveness"),
    path("readyz", views.ReadinessView.as_view(), name="readiness"),
]

handler404 = "app.voice.errors.not_found"
handler500 = "app.voice.errors.server_error"
