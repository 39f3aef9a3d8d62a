"""Why a session cannot start: domain errors, turned into HTTP answers in one place
(app.voice.http.errors)."""

from __future__ import annotations

from uuid import UUID


class SessionError(Exception):
    """Base of the reasons a visitor's request about a session is refused."""


class RoomBusy(SessionError):
    """The room has a live session. ``session_id`` names it when the asker may know it."""

    def __init__(self, session_id: UUID | None = None) -> None:
        super().__init__("the room already has a live session")
        self.session_id = session_id


class RoomTaken(SessionError):
    """The room name is claimed by another identity's unexpired token."""


class IdentityTaken(SessionError):
    """The identity belongs to another visitor (the first who used it)."""


class TooManySessions(SessionError):
    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(f"more than {limit} live sessions for this {scope}")
        self.scope, self.limit = scope, limit  # scope: "identity" or "ip"


class AgentStartFailed(SessionError):
    """The agent could not join the room (LiveKit down, no worker took the session)."""
