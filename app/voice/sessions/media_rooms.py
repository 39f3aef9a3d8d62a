"""The LiveKit room behind a room name: a new one for every claim of the name.

A room name is the visitor's word for a conversation, and it passes to the next visitor
once its session ends. The LiveKit room is not passed on: each claim of a name gets a room
of its own, which the session's ending deletes: the name itself the first time it is used
(sessions.store), ``name~<random>`` after. A token is minted for the LiveKit room, so a
token from an earlier claim names a room that is gone, and the server
(``room.auto_create: false``) will not bring it back for it.
"""

from __future__ import annotations

import secrets

SEPARATOR = "~"  # not a character names may use (contract.rules.NAME_PATTERN): no collisions


def new_media_room(room: str) -> str:
    """A LiveKit room for a new claim of `room`: its name plus 72 random bits."""
    return f"{room}{SEPARATOR}{secrets.token_urlsafe(9)}"


def room_of(media_room: str) -> str:
    """The room name a LiveKit room was made for."""
    return media_room.partition(SEPARATOR)[0]
