"""ASGI entry point: Django for HTTP, Channels for the transcript WebSocket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")
django_http = get_asgi_application()  # sets Django up before the consumers import models

# livekit-agents plugins must register on the main thread: import them here, not lazily.
import livekit.plugins.openai  # noqa: E402, F401
import livekit.plugins.silero  # noqa: E402, F401
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from app.body_limit import BodyLimit  # noqa: E402
from app.voice.http.parsers import MAX_JSON_BODY_BYTES  # noqa: E402
from app.voice.lifespan import with_lifespan  # noqa: E402
from app.voice.ws.origins import OriginValidator  # noqa: E402
from app.voice.ws.routing import websocket_urlpatterns  # noqa: E402

application = with_lifespan(
    ProtocolTypeRouter(
        {
            # The API takes small JSON bodies only: a larger one is refused before Django
            # reads it (which it would do whole, to disk, before any view could say no).
            "http": BodyLimit(django_http, max_bytes=MAX_JSON_BODY_BYTES),
            # The visitor cookie and any signed-in user reach the consumer as scope["session"]
            # and scope["user"]. URLRouter's stubs want Channels' own pattern type; these are
            # Django's re_path. The Host and Origin are checked first (app.voice.ws.origins).
            "websocket": OriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))  # type: ignore[arg-type]
            ),
        }
    )
)
