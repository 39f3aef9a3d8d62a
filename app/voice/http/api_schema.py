"""OpenAPI description of the HTTP API (drf-spectacular), kept beside the views it describes.

The error shape is declared once here and attached to every endpoint's 4xx/5xx
answers, so the schema (served at /openapi.json) tells clients, and the fuzz test,
exactly what every non-2xx body looks like.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from app.voice.http.parsers import MAX_JSON_BODY_BYTES

ErrorSerializer = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorDetail",
            {
                "code": serializers.CharField(help_text="snake_case, stable: switch on this"),
                "message": serializers.CharField(help_text="human text, may change"),
                "session_id": serializers.UUIDField(
                    required=False, help_text="409 room_busy: the room's live session"
                ),
            },
        )
    },
)

SESSION_ID = OpenApiParameter(
    "session_id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="A session id as returned by POST /session (malformed ids are 404).",
)

_DESCRIPTIONS = {
    400: "Invalid request: a parameter or the body failed validation, or the body is not JSON.",
    413: f"The request body is larger than {MAX_JSON_BODY_BYTES // 1024} KiB.",
    404: "No session with this id.",
    403: "room_taken: another identity holds this room name.",
    409: "room_busy: the room already has a live agent session; on POST /session "
    "`error.session_id` names it.",
    415: "The body is not `application/json`.",
    429: "rate_limited (see Retry-After), or too_many_sessions: the live-session bound per "
    "identity or per client IP is reached.",
    503: "A service this request needs (LiveKit, the channel layer) is unavailable.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The `responses=` entries for these error statuses, all in the one error shape."""
    return {code: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[code]) for code in codes}
