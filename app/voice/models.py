"""Sessions and their final transcripts, the persisted half of the WS stream."""

import uuid

from django.db import models
from django.utils import timezone


class SessionStatus(models.TextChoices):
    CREATED = "created"
    RUNNING = "running"
    ENDED = "ended"


class EndReason(models.TextChoices):
    DELETED = "deleted"
    PARTICIPANT_LEFT = "participant_left"
    WS_TIMEOUT = "ws_timeout"
    ERROR = "error"
    SHUTDOWN = "shutdown"


class VoiceSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    room = models.CharField(max_length=128, db_index=True)
    # The LiveKit room the session runs in: its claim's (sessions.media_rooms), never reused.
    livekit_room = models.CharField(max_length=160)
    identity = models.CharField(max_length=128, db_index=True)
    status = models.CharField(
        max_length=16, choices=SessionStatus.choices, default=SessionStatus.CREATED
    )
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Touched by the live agent's host; a stale value means that host died (see sweeper).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Who started it, for the per-IP bound on live sessions; never exposed by the API.
    client_ip = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    # The visitor who owns it (app.voice.sessions.visitors): only they may read, follow or stop
    # it. Empty for sessions made before visitors existed: nobody's, so nobody sees them.
    visitor = models.CharField(max_length=64, blank=True, default="", db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one live agent per room, enforced by the database itself.
            models.UniqueConstraint(
                fields=["room"],
                condition=~models.Q(status="ended"),
                name="one_live_session_per_room",
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.room}, {self.status})"

    @property
    def is_live(self) -> bool:
        return self.status != SessionStatus.ENDED


class RoomClaim(models.Model):
    """The identity that minted the latest token for a room, until that token expires.

    With the room's live session this decides who may use a room name (session_store):
    a claim made before the room's last session ended no longer counts.
    """

    room = models.CharField(max_length=128, unique=True)
    identity = models.CharField(max_length=128)
    # The LiveKit room this claim's tokens are for (sessions.media_rooms): a new claim, a new room.
    livekit_room = models.CharField(max_length=160)
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.room} → {self.identity} until {self.expires_at}"


class IdentityClaim(models.Model):
    """An identity belongs to the visitor who first used it: nobody else can join as it,
    until it has gone unused for VOICE_IDENTITY_HOLD_DAYS (names are not held forever)."""

    identity = models.CharField(max_length=128, unique=True)
    visitor = models.CharField(max_length=64, db_index=True)
    claimed_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.identity} → {self.visitor}"


class TranscriptEntry(models.Model):
    session = models.ForeignKey(VoiceSession, on_delete=models.CASCADE, related_name="entries")
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=8)
    text = models.TextField()
    # An agent line the person cut off by speaking over it.
    interrupted = models.BooleanField(default=False)
    # A user line typed rather than spoken.
    typed = models.BooleanField(default=False)
    # An agent reply's latency (contract.messages.Latency: total_ms and its parts); null for
    # lines that answer no turn (the greeting) and for user lines.
    latency = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="unique_entry_seq")
        ]
