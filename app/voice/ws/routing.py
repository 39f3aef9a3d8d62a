"""WebSocket routes: the transcript socket, and a catch-all that refuses any other path."""

from django.urls import re_path

from app.voice.ws.consumer import TranscriptConsumer, UnknownPathConsumer

# Channels routes ASGI consumers with Django's re_path, whose stubs expect a view (hence the ignores).
websocket_urlpatterns = [
    re_path(r"^ws/transcript/(?P<session_id>[^/]+)/?$", TranscriptConsumer.as_asgi()),  # type: ignore[arg-type]
    # Last: any other path is closed with 4404 instead of URLRouter raising ValueError.
    re_path(r"^", UnknownPathConsumer.as_asgi()),  # type: ignore[arg-type]
]
