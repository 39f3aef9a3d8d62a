"""WebSocket routes: the transcript socket, and a catch-all that refuses any other path."""

from django.urls import re_path

from app.voice.ws.consumer import TranscriptConsumer, UnknownPathConsumer
from app.voice.ws.limits import SocketLimit

# Channels routes ASGI consumers with Django's re_path, whose stubs expect a view (hence the ignores).
websocket_urlpatterns = [
    # Open sockets are bounded per session and per process (app.voice.ws.limits).
    re_path(r"^ws/transcript/(?P<session_id>[^/]+)/?$", SocketLimit(TranscriptConsumer.as_asgi())),  # type: ignore[arg-type]
    # Last: any other path is closed with 4404 instead of URLRouter raising ValueError.
    re_path(r"^", UnknownPathConsumer.as_asgi()),  # type: ignore[arg-type]
]
