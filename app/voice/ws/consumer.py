"""WS /ws/transcript/{session_id}: forwards one session's messages to the browser.

Thin by design: check who is asking, validate the id, replay the finals a late subscriber
missed, then forward group messages until the session ends. Only the session's own visitor
(the cookie of app.voice.sessions.visitors, read by the session middleware in app.asgi) may
follow it: another visitor's session is closed as unknown. Close codes:
app.voice.contract.close_codes.
"""

from __future__ import annotations

from typing import Any, cast

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import RedisError

from app.voice.contract import close_codes, messages
from app.voice.sessions import store
from app.voice.sessions.groups import transcript_group
from app.voice.sessions.rate import TokenBucket
from app.voice.sessions.visitors import visitor_key
from app.voice.ws import limits

# The only frame a client may send is a ping; anything longer is not parsed at all.
MAX_CLIENT_FRAME_CHARS = 1024


class TranscriptConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    last_seq = 0
    closing = False
    frame_budget: TokenBucket

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' dispatch loop, and a clean 1012 when a dependency fails under it (Redis
        restarting: it has forgotten the socket's group; PostgreSQL unreachable while the
        socket replays): the client must open the socket again, and is told so instead of
        getting a traceback."""
        try:
            await super().__call__(scope, receive, send)
        except (RedisError, OSError, OperationalError, InterfaceError) as exc:
            limits.log.warning("ws.channel_layer_lost", extra={"error": repr(exc)})
            try:
                await send({"type": "websocket.close", "code": close_codes.SERVICE_RESTART})
            except (RuntimeError, OSError):  # the socket had gone already: nobody to tell
                pass

    async def connect(self) -> None:
        await self.accept()  # accept first: only an open socket can carry a 4xxx close code
        self.frame_budget = TokenBucket(settings.VOICE_WS_FRAME_RATE, settings.VOICE_WS_FRAME_BURST)
        visitor = visitor_key(self.scope.get("session"), self.scope.get("user"))
        if visitor is None:
            return await self.close(close_codes.NO_VISITOR)
        session_id = store.parse_session_id(self.scope["url_route"]["kwargs"]["session_id"])
        if session_id is None:
            return await self.close(close_codes.MALFORMED_ID)
        # Join before reading the state and the history, so nothing falls between them:
        # a session that ends from here on reaches us as a group message; seq drops repeats.
        self.group = transcript_group(session_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        session = await store.get_own_session(session_id, visitor)
        if session is None or not session.is_live:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            code = close_codes.UNKNOWN_SESSION if session is None else close_codes.SESSION_ENDED
            return await self.close(code)
        for entry in await store.final_transcripts(session_id):
            role = cast(messages.Role, entry.role)  # the bridge saved it from a message
            line = messages.transcript(
                role, entry.text, final=True, interrupted=entry.interrupted, typed=entry.typed, latency=entry.latency
            )
            await self._forward(messages.with_seq(line, entry.seq))

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """The socket is server-to-client: a ping gets a pong, another small text frame an
        error frame; a binary, oversized or flooding frame closes the socket (ws.limits)."""
        if self.closing:
            return None  # a frame racing our close: nothing more is read or answered
        if (code := limits.frame_verdict(self.frame_budget, text_data, bytes_data)) is not None:
            limits.log.info("ws.closed_for_abuse", extra={"code": code})
            return await self.close(code)
        if text_data is not None and len(text_data) <= MAX_CLIENT_FRAME_CHARS:
            if isinstance(messages.client_message(text_data), messages.Ping):
                return await self.send_json(messages.pong())
        await self.send_json(
            messages.error_body(
                "unsupported_frame", 'This socket only sends; the only accepted frame is {"type": "ping"}.'
            )
        )

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        self.closing = True
        await super().close(code, reason)

    async def transcript_message(self, event: dict[str, Any]) -> None:
        await self._forward(event["message"])

    async def session_ended(self, event: dict[str, Any]) -> None:
        await self.send_json(event["message"])
        await self.close(close_codes.NORMAL_CLOSURE)

    async def _forward(self, message: messages.Message) -> None:
        seq = message.get("seq", 0)
        if seq and seq <= self.last_seq:
            return
        self.last_seq = max(self.last_seq, seq)
        await self.send_json(message)


class UnknownPathConsumer(AsyncJsonWebsocketConsumer):
    """Any WebSocket path but the transcript one: refused with 4404, nothing else."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(close_codes.UNKNOWN_SESSION)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        return None  # closed already; a frame racing the close is dropped
