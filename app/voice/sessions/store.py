"""Persisted session state: the created → running → ended state machine.

Plain async functions over the ORM (selectors read, the rest are transitions), so the
lifecycle code, the agent and the views share one set of transitions. Every transition is a conditional UPDATE, so two
processes racing to end a session cannot both win.

Async outside, sync ORM inside: each function is one thread hop (`_orm`) around its queries.
A transaction (create_session) and a claim's checked writes (claim_room) need theirs on one
connection, Django's async ORM has no async transactions (and its a-methods are the same
hop, one per query), and `_orm` also reconnects for callers outside a request.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Max, Q, QuerySet, Value, When
from django.utils import timezone

from app.voice.models import EndReason, IdentityClaim, RoomClaim, SessionStatus, TranscriptEntry, VoiceSession
from app.voice.sessions.errors import IdentityTaken, RoomBusy, RoomTaken, TooManySessions
from app.voice.sessions.media_rooms import new_media_room

# LiveKit accepts a token up to a minute after it expired (livekit/protocol auth's
# tokenLeeway); an expired claim's row is kept longer than that, with a margin.
EXPIRED_TOKEN_GRACE = timedelta(minutes=10)


P = ParamSpec("P")
R = TypeVar("R")


def _orm(func: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """sync_to_async, first dropping this thread's connection if a query on it failed and it
    no longer works (PostgreSQL restarted, say), so that the call connects anew. Django does
    so only around requests: a caller outside any (an agent's run, the sweeper) would
    otherwise fail on the dead connection for as long as it lives."""

    @functools.wraps(func)
    def fresh(*args: P.args, **kwargs: P.kwargs) -> R:
        if connection.errors_occurred and not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        return func(*args, **kwargs)

    return sync_to_async(fresh)


def parse_session_id(raw: str) -> UUID | None:
    try:
        return UUID(raw)
    except (ValueError, TypeError, AttributeError):
        return None


def _create(
    room: str, identity: str, client_ip: str | None = None, *, visitor: str = "", retry: bool = True
) -> VoiceSession:
    """Insert the session, owned by `visitor`, then check the bounds and the room's claim in
    the same transaction (insert first: on SQLite the write lock makes the counts exact).
    The session runs in its identity's claimed LiveKit room, or in a new one when the
    identity never asked for a token. An empty `visitor` (internal callers only) owns
    nothing: no identity claim, no reader."""
    try:
        with transaction.atomic():
            fresh = _fresh_media_room(room)
            session = VoiceSession.objects.create(
                room=room, livekit_room=fresh, identity=identity, client_ip=client_ip, visitor=visitor
            )
            if visitor:
                _claim_identity(identity, visitor)
            if (claim := _counting_claim(room, timezone.now())) is not None:
                if claim.identity != identity:
                    raise RoomTaken(room)
                session.livekit_room = claim.livekit_room  # where the identity's token joins
                session.save(update_fields=["livekit_room"])
            live = VoiceSession.objects.exclude(status=SessionStatus.ENDED)
            limit = settings.VOICE_MAX_SESSIONS_PER_IDENTITY
            if live.filter(identity=identity).count() > limit:
                raise TooManySessions("identity", limit)
            limit = settings.VOICE_MAX_SESSIONS_PER_IP
            if client_ip is not None and live.filter(client_ip=client_ip).count() > limit:
                raise TooManySessions("ip", limit)
            return session
    except IntegrityError:
        existing = VoiceSession.objects.filter(room=room).exclude(status=SessionStatus.ENDED).first()
        if existing is None and retry:  # it ended between the insert and this read: try once more
            return _create(room, identity, client_ip, visitor=visitor, retry=False)
        if existing is None:
            raise
        # Its id is for its owner only: to anyone else, the session does not exist.
        raise RoomBusy(existing.id if visitor and existing.visitor == visitor else None) from None


create_session = _orm(_create)


def _claim_identity(identity: str, visitor: str) -> None:
    """`identity` belongs to the first visitor who used it; anyone else is refused until
    it has gone unused for VOICE_IDENTITY_HOLD_DAYS and has no live session."""
    now = timezone.now()
    claim, created = IdentityClaim.objects.get_or_create(
        identity=identity, defaults={"visitor": visitor, "last_used_at": now}
    )
    if created:
        return
    if claim.visitor == visitor:
        IdentityClaim.objects.filter(pk=claim.pk).update(last_used_at=now)
        return
    lapsed = now - timedelta(days=settings.VOICE_IDENTITY_HOLD_DAYS)
    in_use = VoiceSession.objects.filter(identity=identity).exclude(status=SessionStatus.ENDED).exists()
    # One conditional write: of two visitors taking over a lapsed name, one wins.
    if in_use or not IdentityClaim.objects.filter(
        pk=claim.pk, visitor=claim.visitor, last_used_at__lte=lapsed
    ).update(visitor=visitor, claimed_at=now, last_used_at=now):
        raise IdentityTaken(identity)


def _fresh_media_room(room: str) -> str:
    """A LiveKit room no token has ever been minted for: the name itself while it has never
    been used (no session, no claim kept), else a new one (sessions.media_rooms)."""
    used = VoiceSession.objects.filter(room=room).exists() or RoomClaim.objects.filter(room=room).exists()
    return new_media_room(room) if used else room


def _counting_claim(room: str, now: datetime) -> RoomClaim | None:
    """The token claim on `room` that still counts: unexpired, and made after the room's
    last session ended (ending a session releases the name)."""
    claim = RoomClaim.objects.filter(room=room, expires_at__gt=now).first()
    if claim is None:
        return None
    last_end = VoiceSession.objects.filter(room=room).aggregate(last=Max("ended_at"))["last"]
    return None if last_end is not None and last_end >= claim.claimed_at else claim


@_orm
def claim_room(room: str, identity: str, ttl: timedelta, *, visitor: str = "") -> str:
    """Record that `identity` holds `room` for `ttl` (a token's lifetime) and return the
    LiveKit room its token is for; or refuse: IdentityTaken when the identity belongs to
    another visitor, RoomBusy when another identity's session is live there, RoomTaken when
    another identity's claim still counts. The identity's live session or counting claim
    keeps its LiveKit room; any other claim gets a new one (sessions.media_rooms), so no
    token from an earlier claim joins it. The claim is one conditional write, so of two
    visitors racing for a free name exactly one wins."""
    if visitor:
        _claim_identity(identity, visitor)
    live = _refuse_if_live_for_other(room, identity)
    now = timezone.now()
    # Expired claims: housekeeping, once no token of theirs can still join (the claim's row
    # is what keeps a later claim off the room its tokens name).
    RoomClaim.objects.filter(expires_at__lte=now - EXPIRED_TOKEN_GRACE).delete()
    last_end = VoiceSession.objects.filter(room=room).aggregate(last=Max("ended_at"))["last"]
    free = Q(identity=identity) | Q(expires_at__lte=now)
    mine_still_counts = Q(identity=identity, expires_at__gt=now)
    if last_end is not None:
        free |= Q(claimed_at__lte=last_end)
        mine_still_counts &= Q(claimed_at__gt=last_end)
    fresh = live.livekit_room if live is not None else _fresh_media_room(room)
    fields = {"identity": identity, "claimed_at": now, "expires_at": now + ttl}
    keep_or_fresh = Case(When(mine_still_counts, then=F("livekit_room")), default=Value(fresh))
    if not RoomClaim.objects.filter(free, room=room).update(livekit_room=keep_or_fresh, **fields):
        try:
            with transaction.atomic():
                RoomClaim.objects.create(room=room, livekit_room=fresh, **fields)
        except IntegrityError:  # the row exists and another identity holds it
            raise RoomTaken(room) from None
    _refuse_if_live_for_other(room, identity)  # again: a session may have started meanwhile
    media_room = RoomClaim.objects.filter(room=room, identity=identity).values_list("livekit_room", flat=True).first()
    if media_room is None:  # another identity took the name after our write
        raise RoomTaken(room)
    return media_room


def _refuse_if_live_for_other(room: str, identity: str) -> VoiceSession | None:
    """The room's live session, which must be `identity`'s own."""
    live = VoiceSession.objects.filter(room=room).exclude(status=SessionStatus.ENDED).first()
    if live is not None and live.identity != identity:
        raise RoomBusy()  # another identity's session: its id is not the asker's to know
    return live


@_orm
def get_session(session_id: UUID | str) -> VoiceSession | None:
    return VoiceSession.objects.filter(pk=session_id).first()


def sessions_of(visitor: str) -> QuerySet[VoiceSession]:
    """The visitor's own sessions, newest first; nobody owns the empty visitor's."""
    return VoiceSession.objects.filter(visitor=visitor).exclude(visitor="").order_by("-created_at", "-id")


@_orm
def get_own_session(session_id: UUID | str, visitor: str) -> VoiceSession | None:
    """The session if `visitor` owns it; None for another visitor's, as for an unknown id."""
    return sessions_of(visitor).filter(pk=session_id).first()


def reply_latency_p50(entries: Iterable[TranscriptEntry]) -> int | None:
    """The median of the agent replies' latencies (ms), for a conversation's history."""
    totals = [
        entry.latency["total_ms"] for entry in entries
        if entry.role == "agent" and isinstance(entry.latency, dict) and isinstance(entry.latency.get("total_ms"), int)
    ]
    return round(statistics.median(totals)) if totals else None


@_orm
def mark_running(session_id: UUID | str) -> bool:
    now = timezone.now()
    return bool(
        VoiceSession.objects.filter(pk=session_id, status=SessionStatus.CREATED).update(
            status=SessionStatus.RUNNING, started_at=now, heartbeat_at=now
        )
    )


@_orm
def heartbeat(session_id: UUID | str) -> None:
    VoiceSession.objects.filter(pk=session_id).exclude(status=SessionStatus.ENDED).update(
        heartbeat_at=timezone.now()
    )


@_orm
def stale_live_sessions(older_than: timedelta) -> list[VoiceSession]:
    """Live sessions whose host has not been heard from (or never started) in `older_than`."""
    cutoff = timezone.now() - older_than
    live = VoiceSession.objects.exclude(status=SessionStatus.ENDED)
    return list(
        live.filter(heartbeat_at__lt=cutoff)
        | live.filter(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )


@_orm
def mark_ended(session_id: UUID | str, reason: EndReason) -> bool:
    """End the session; True only for the caller that actually ended it."""
    return bool(
        VoiceSession.objects.filter(pk=session_id)
        .exclude(status=SessionStatus.ENDED)
        .update(status=SessionStatus.ENDED, end_reason=reason, ended_at=timezone.now())
    )


@_orm
def save_final_transcript(
    session_id: UUID | str,
    seq: int,
    role: str,
    text: str,
    *,
    interrupted: bool = False,
    typed: bool = False,
    latency: dict[str, int | None] | None = None,
) -> None:
    TranscriptEntry.objects.create(
        session_id=session_id, seq=seq, role=role, text=text, interrupted=interrupted, typed=typed, latency=latency
    )


@_orm
def final_transcripts(session_id: UUID) -> list[TranscriptEntry]:
    return list(TranscriptEntry.objects.filter(session_id=session_id).order_by("seq"))
