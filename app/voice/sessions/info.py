"""What the agent side knows of a session: built from its row, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # plain data: importable without Django set up (provider sets, benchmarks)
    from app.voice.models import VoiceSession


@dataclass(frozen=True)
class SessionInfo:
    """The ids a provider set, the agent and the logs need; nothing mutable."""

    session_id: str
    room: str  # the name the visitor chose, for logs and scripted providers
    identity: str
    livekit_room: str  # where the media flows (sessions.media_rooms): join, dispatch, delete

    @classmethod
    def of(cls, session: VoiceSession) -> SessionInfo:
        return cls(
            session_id=str(session.id), room=session.room, identity=session.identity, livekit_room=session.livekit_room
        )
