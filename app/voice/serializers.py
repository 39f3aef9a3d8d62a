"""Input validation and output shapes for the HTTP API."""

from django.core.validators import RegexValidator
from rest_framework import serializers

from app.voice.models import TranscriptEntry, VoiceSession

NAME_RULE = RegexValidator(
    r"^[A-Za-z0-9_.-]{1,128}$", "Use 1 to 128 characters: letters, digits, '_', '.', '-'."
)


def _name_field() -> serializers.CharField:
    return serializers.CharField(max_length=128, trim_whitespace=False, validators=[NAME_RULE])


class RoomIdentitySerializer(serializers.Serializer):
    """Used for GET /token (query) and POST /session (JSON body)."""

    room = _name_field()
    identity = _name_field()


class SessionSerializer(serializers.ModelSerializer):
    session_id = serializers.UUIDField(source="id", read_only=True)
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = VoiceSession
        fields = [
            "session_id",
            "room",
            "identity",
            "status",
            "end_reason",
            "created_at",
            "started_at",
            "ended_at",
            "duration_seconds",
        ]

    def get_duration_seconds(self, obj: VoiceSession) -> float | None:
        if obj.started_at and obj.ended_at:
            return round((obj.ended_at - obj.started_at).total_seconds(), 1)
        return None


class TranscriptEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = TranscriptEntry
        fields = ["seq", "role", "text", "created_at"]
