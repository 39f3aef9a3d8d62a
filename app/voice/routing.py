from django.urls import re_path

from app.voice.transcript_consumer import TranscriptConsumer

websocket_urlpatterns = [
    re_path(r"^ws/transcript/(?P<session_id>[^/]+)/?$", TranscriptConsumer.as_asgi()),
]
