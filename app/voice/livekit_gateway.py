"""Everything the backend needs from a LiveKit server, behind one small class.

Token minting is local (a signed JWT); joining a room and the readiness probe
talk to the server. ``settings.LIVEKIT_GATEWAY`` names the class, so tests can
inject a stand-in that needs no server.
"""

from __future__ import annotations

import functools
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string
from livekit import api, rtc


class LiveKitGateway:
    def __init__(self, *, url: str, public_url: str, api_key: str, api_secret: str) -> None:
        self.url = url
        self.public_url = public_url
        self._api_key = api_key
        self._api_secret = api_secret

    def mint_token(
        self, *, room: str, identity: str, ttl: timedelta, name: str | None = None
    ) -> str:
        """A JWT that lets `identity` join `room` only: publish and subscribe, nothing admin."""
        grants = api.VideoGrants(
            room_join=True, room=room, can_publish=True, can_subscribe=True, can_publish_data=True
        )
        token = (
            api.AccessToken(self._api_key, self._api_secret)
            .with_identity(identity)
            .with_name(name or identity)
            .with_grants(grants)
            .with_ttl(ttl)
        )
        return token.to_jwt()

    async def join_room(self, *, room: str, identity: str) -> rtc.Room:
        """Connect a server-side participant (the agent) to `room`."""
        connection = rtc.Room()
        token = self.mint_token(room=room, identity=identity, ttl=timedelta(minutes=5), name="Agent")
        await connection.connect(self.url, token, rtc.RoomOptions(auto_subscribe=True))
        return connection

    async def ping(self, timeout: float = 2.0) -> None:
        """Raise if the LiveKit server does not answer its HTTP health check."""
        http_url = self.url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(http_url.rstrip("/") + "/")
            response.raise_for_status()


@functools.cache
def get_gateway() -> LiveKitGateway:
    cls = import_string(getattr(settings, "LIVEKIT_GATEWAY", "app.voice.livekit_gateway.LiveKitGateway"))
    return cls(
        url=settings.LIVEKIT_URL,
        public_url=settings.LIVEKIT_PUBLIC_URL,
        api_key=settings.LIVEKIT_API_KEY,
        api_secret=settings.LIVEKIT_API_SECRET,
    )


def _reset(*, setting: str, **_: object) -> None:
    if setting.startswith("LIVEKIT_"):
        get_gateway.cache_clear()


setting_changed.connect(_reset)
