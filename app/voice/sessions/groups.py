"""The channel layer and its group names, shared by whoever sends and whoever listens."""

from __future__ import annotations

import asyncio
import threading
import weakref
from uuid import UUID

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import BaseChannelLayer, channel_layers, get_channel_layer
from django.core.exceptions import ImproperlyConfigured

# An agent worker runs each session on an event loop of its own thread. The Redis layer keeps
# per-loop state (its receive buffer's asyncio queues and lock, its connections), so one
# instance shared by several loops loses messages: each such loop gets its own instance.
_thread_loop_layers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BaseChannelLayer] = (
    weakref.WeakKeyDictionary()
)


def channel_layer() -> BaseChannelLayer:
    """The default channel layer (settings always configure one: in memory, or Redis); on
    an event loop outside the main thread, an instance of its own."""
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("CHANNEL_LAYERS has no default layer")
    if threading.current_thread() is threading.main_thread() or not hasattr(layer, "close_pools"):
        return layer  # the main loop, or a layer without connections (in memory: shared state)
    loop = asyncio.get_running_loop()
    if loop not in _thread_loop_layers:
        _thread_loop_layers[loop] = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    return _thread_loop_layers[loop]


async def close_thread_channel_layer() -> None:
    """Close the connections of this loop's own layer (a session thread that is ending)."""
    layer = _thread_loop_layers.pop(asyncio.get_running_loop(), None)
    if layer is not None:
        await layer.close_pools()  # type: ignore[attr-defined]


def transcript_group(session_id: str | UUID) -> str:
    """WebSocket clients of one session listen here."""
    return f"transcripts.{UUID(str(session_id)).hex}"


def control_group(session_id: str | UUID) -> str:
    """The process hosting a session's agent listens here (for stop requests)."""
    return f"agent.{UUID(str(session_id)).hex}"
