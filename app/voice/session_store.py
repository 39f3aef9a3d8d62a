"""Persisted session state: the created → running → ended state machine.

Plain async functions over the ORM, so the lifecycle code and the views share
one set of transitions. Every transition is a conditional UPDATE, so two
processes racing to end a session cannot both win.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.utils import timezone

from app.voice.models import EndReason, SessionStatus, TranscriptEntry, VoiceSession

log = logging.getLogger("app.voice.sessions")


class RoomBusy(Exception):
    def __init__(self, existing: VoiceSession) -> None:
        super().__init__(f"room {existing.room} already has session {existing.id}")
        self.existing = existing


def parse_session_id(raw: str) -> UUID | None:
    try:
        return UUID(raw)
    except (ValueError, TypeError, AttributeError):
        return None


def _create(room: str, identity: str) -> VoiceSession:
    try:
        with transaction.atomic():
            return VoiceSession.objects.create(room=room, identity=identity)
    except IntegrityError:
        existing = VoiceSession.objects.filter(room=room).exclude(status=SessionStatus.ENDED).first()
        if existing is None:  # it ended between the insert and this read: try once more
            return VoiceSession.objects.create(room=room, identity=identity)
        raise RoomBusy(existing) from None


create_session = sync_to_async(_create)


@sync_to_async
def get_session(session_id: UUID | str) -> VoiceSession | None:
    return VoiceSession.objects.filter(pk=session_id).first()


@sync_to_async
def mark_running(session_id: UUID | str) -> bool:
    now = timezone.now()
    return bool(
        VoiceSession.objects.filter(pk=session_id, status=SessionStatus.CREATED).update(
            status=SessionStatus.RUNNING, started_at=now, heartbeat_at=now
        )
    )


@sync_to_async
def heartbeat(session_id: UUID | str) -> None:
    VoiceSession.objects.filter(pk=session_id).exclude(status=SessionStatus.ENDED).update(
        heartbeat_at=timezone.now()
    )


@sync_to_async
def stale_live_sessions(older_than: timedelta) -> list[VoiceSession]:
    """Live sessions whose host has not been heard from (or never started) in `older_than`."""
    cutoff = timezone.now() - older_than
    live = VoiceSession.objects.exclude(status=SessionStatus.ENDED)
    return list(
        live.filter(heartbeat_at__lt=cutoff)
        | live.filter(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )


@sync_to_async
def mark_ended(session_id: UUID | str, reason: EndReason) -> bool:
    """End the session; True only for the caller that actually ended it."""
    return bool(
        VoiceSession.objects.filter(pk=session_id)
        .exclude(status=SessionStatus.ENDED)
        .update(status=SessionStatus.ENDED, end_reason=reason, ended_at=timezone.now())
    )


@sync_to_async
def end_all_live(reason: EndReason) -> int:
    return (
        VoiceSession.objects.exclude(status=SessionStatus.ENDED)
        .update(status=SessionStatus.ENDED, end_reason=reason, ended_at=timezone.now())
    )


@sync_to_async
def save_final_transcript(session_id: UUID | str, seq: int, role: str, text: str) -> None:
    TranscriptEntry.objects.create(session_id=session_id, seq=seq, role=role, text=text)


@sync_to_async
def final_transcripts(session_id: UUID | str) -> list[TranscriptEntry]:
    return list(TranscriptEntry.objects.filter(session_id=session_id).order_by("seq"))
