"""WS /ws/transcript/{session_id}: forwards one session's messages to the browser.

Thin by design: validate the id, replay the finals a late subscriber missed,
then forward group messages until the session ends. Close codes: app.voice.contract.close_codes.
"""

from __future__ import annotations

import json
from typing import Any, cast

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from app.voice.contract import close_codes, messages
from app.voice.sessions import store
from app.voice.sessions.groups import transcript_group

# The only frame a client may send is a ping; anything longer is not parsed at all.
MAX_CLIENT_FRAME_CHARS = 1024


class TranscriptConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    last_seq = 0

    async def connect(self) -> None:
        await self.accept()  # accept first: only an open socket can carry a 4xxx close code
        session_id = store.parse_session_id(self.scope["url_route"]["kwargs"]["session_id"])
        if session_id is None:
            return await self.close(close_codes.MALFORMED_ID)
        # Join before reading the state and the history, so nothing falls between them:
        # a session that ends from here on reaches us as a group message; seq drops repeats.
        self.group = transcript_group(session_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        session = await store.get_session(session_id)
        if session is None or not session.is_live:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            code = close_codes.UNKNOWN_SESSION if session is None else close_codes.SESSION_ENDED
            return await self.close(code)
        for entry in await store.final_transcripts(session_id):
            role = cast(messages.Role, entry.role)  # the bridge saved it from a message
            line = messages.transcript(role, entry.text, final=True, interrupted=entry.interrupted)
            await self._forward(messages.with_seq(line, entry.seq))

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """The socket is server-to-client; answer anything else with an error frame."""
        frame = None
        if text_data is not None and len(text_data) <= MAX_CLIENT_FRAME_CHARS:
            try:
                frame = json.loads(text_data)
            except (ValueError, RecursionError):  # RecursionError: deeply nested arrays
                frame = None
        if isinstance(frame, dict) and frame.get("type") == "ping":
            return await self.send_json(messages.pong())
        await self.send_json(
            messages.error_body(
                "unsupported_frame", 'This socket only sends; the only accepted frame is {"type": "ping"}.'
            )
        )

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
