"""Channel-layer group names, shared by whoever sends and whoever listens."""

from uuid import UUID


def transcript_group(session_id: str | UUID) -> str:
    """WebSocket clients of one session listen here."""
    return f"transcripts.{UUID(str(session_id)).hex}"


def control_group(session_id: str | UUID) -> str:
    """The process hosting a session's agent listens here (for stop requests)."""
    return f"agent.{UUID(str(session_id)).hex}"
