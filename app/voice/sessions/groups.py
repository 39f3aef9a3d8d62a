"""The channel layer and its group names, shared by whoever sends and whoever listens."""

from uuid import UUID

from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured


def channel_layer() -> BaseChannelLayer:
    """The default channel layer (settings always configure one: in memory, or Redis)."""
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("CHANNEL_LAYERS has no default layer")
    return layer


def transcript_group(session_id: str | UUID) -> str:
    """WebSocket clients of one session listen here."""
    return f"transcripts.{UUID(str(session_id)).hex}"


def control_group(session_id: str | UUID) -> str:
    """The process hosting a session's agent listens here (for stop requests)."""
    return f"agent.{UUID(str(session_id)).hex}"
