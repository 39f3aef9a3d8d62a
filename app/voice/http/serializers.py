"""Input validation and output shapes for the HTTP API."""

import re

from django.core.validators import RegexValidator
from rest_framework import serializers

from app.voice.contract import rules
from app.voice.models import TranscriptEntry, VoiceSession


class FullMatchValidator(RegexValidator):
    """RegexValidator that matches the whole value: `$` alone would let "room\n" through.

    The pattern stays ECMA-compatible for the OpenAPI schema; the match is `fullmatch`.
    """

    regex: re.Pattern[str]  # RegexValidator compiles the pattern it is given

    def __call__(self, value: object) -> None:
        if not isinstance(value, str) or not self.regex.fullmatch(value):
            raise serializers.ValidationError(self.message, code=self.code)


NAME_RULE = FullMatchValidator(f"^{rules.NAME_PATTERN}$", rules.NAME_RULE_TEXT)


class StrictCharField(serializers.CharField):
    """A string, not a number or a bool turned into one: wrong JSON types are a 400."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _name_field() -> serializers.CharField:
    return StrictCharField(max_length=rules.NAME_MAX_LENGTH, trim_whitespace=False, validators=[NAME_RULE])


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


class LatencySerializer(serializers.Serializer):
    """An agent reply's latency (contract.messages.Latency), whole milliseconds."""

    total_ms = serializers.IntegerField(min_value=0)
    end_of_turn_ms = serializers.IntegerField(min_value=0, allow_null=True)
    stt_ms = serializers.IntegerField(min_value=0, allow_null=True)
    llm_ms = serializers.IntegerField(min_value=0, allow_null=True)
    tts_ms = serializers.IntegerField(min_value=0, allow_null=True)


class TranscriptEntrySerializer(serializers.ModelSerializer):
    """A final line as the socket carried it: a typed user line says so; an agent line says
    whether it was cut off and how long the reply took to start (null for the greeting)."""

    latency = LatencySerializer(allow_null=True, read_only=True)

    class Meta:
        model = TranscriptEntry
        fields = ["seq", "role", "text", "typed", "interrupted", "latency", "created_at"]


class TokenSerializer(serializers.Serializer):
    """GET /token's answer: the JWT and the LiveKit URL the browser must use."""

    token = serializers.CharField()
    url = serializers.CharField()
    room = serializers.CharField()
    identity = serializers.CharField()


class SessionCreatedSerializer(SessionSerializer):
    """POST /session's answer: the session plus where its transcript socket lives."""

    ws_path = serializers.SerializerMethodField()

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "ws_path"]

    def get_ws_path(self, obj: VoiceSession) -> str:
        return rules.ws_path(obj.id)


class TranscriptSerializer(serializers.Serializer):
    """GET /transcripts/{id}: the session's metadata and its final lines in order."""

    session = SessionSerializer()
    entries = TranscriptEntrySerializer(many=True)
    latency_p50_ms = serializers.IntegerField(
        allow_null=True, help_text="the median latency of the agent's replies; null when none had one"
    )


class ExportLineSerializer(serializers.Serializer):
    """A final line in GET /transcripts/{id}/export.json (how times are made: http/export.py)."""

    seq = serializers.IntegerField(min_value=0)
    role = serializers.ChoiceField(choices=["user", "agent"])
    text = serializers.CharField(allow_blank=True)
    typed = serializers.BooleanField(help_text="a user line typed, not spoken")
    interrupted = serializers.BooleanField(help_text="an agent line the person cut off")
    latency = LatencySerializer(allow_null=True, help_text="an agent reply's latency; null otherwise")
    recorded_at = serializers.DateTimeField(help_text="when the line became final and was stored")
    offset_ms = serializers.IntegerField(min_value=0, help_text="recorded_at after time_origin, in ms")
    caption_start_ms = serializers.IntegerField(min_value=0, help_text="the WebVTT cue's start (estimated)")
    caption_end_ms = serializers.IntegerField(min_value=0, help_text="the WebVTT cue's end")


class ConversationExportSerializer(serializers.Serializer):
    """GET /transcripts/{id}/export.json: a conversation as one downloadable document."""

    version = serializers.IntegerField(help_text="of this document's shape")
    session = SessionSerializer()
    time_origin = serializers.DateTimeField(help_text="offsets count from here: the session's start (or creation)")
    latency_p50_ms = serializers.IntegerField(allow_null=True, help_text="the median latency of the agent's replies")
    lines = ExportLineSerializer(many=True)


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=list(rules.HealthStatus))
    checks = serializers.DictField(child=serializers.ChoiceField(choices=list(rules.HealthStatus)), required=False)
