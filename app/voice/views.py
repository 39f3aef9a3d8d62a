"""HTTP edge: validate, call the lifecycle/service functions, shape the answer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from app.voice import lifecycle, session_store
from app.voice.api_schema import SESSION_ID, ErrorSerializer, errors
from app.voice.errors import Conflict, ServiceUnavailable, error_body
from app.voice.livekit_gateway import get_gateway
from app.voice.models import VoiceSession
from app.voice.serializers import (
    HealthSerializer,
    RoomIdentitySerializer,
    SessionCreatedSerializer,
    SessionSerializer,
    TokenSerializer,
    TranscriptEntrySerializer,
    TranscriptSerializer,
)
from app.voice.throttling import (
    RateLimitedMixin,
    SessionRateThrottle,
    TokenRateThrottle,
    client_ip,
)


def _get_session_or_404(raw_id: str) -> VoiceSession:
    session_id = session_store.parse_session_id(raw_id)
    session = VoiceSession.objects.filter(pk=session_id).first() if session_id else None
    if session is None:
        raise exceptions.NotFound("No session with this id.")
    return session


# Errors of the security rules (README "Security"), in the one error shape.
_SECURITY_ERRORS = {
    403: OpenApiResponse(ErrorSerializer, description="room_taken: another identity holds this room name."),
    429: OpenApiResponse(
        ErrorSerializer,
        description="rate_limited (see Retry-After), or too_many_sessions: the live-session "
        "bound per identity or per client IP is reached.",
    ),
}
ROOM_BUSY = "This room already has a live agent session."
ROOM_TAKEN = "This room name is in use by someone else; choose another room."


class TokenView(RateLimitedMixin, APIView):
    """GET /token?room=R&identity=I → a LiveKit JWT that joins room R only.

    Minting claims R for I for the token's lifetime; a room another identity holds is refused.
    """

    throttle_classes = [TokenRateThrottle]

    @extend_schema(
        parameters=[RoomIdentitySerializer],
        responses={200: TokenSerializer, **errors(400, 409), **_SECURITY_ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = RoomIdentitySerializer(data=single_query_params(request, "room", "identity"))
        params.is_valid(raise_exception=True)
        room, identity = params.validated_data["room"], params.validated_data["identity"]
        ttl = timedelta(seconds=settings.LIVEKIT_TOKEN_TTL_SECONDS)
        try:
            async_to_sync(session_store.claim_room)(room, identity, ttl)
        except session_store.RoomBusy:
            raise Conflict(ROOM_BUSY, code="room_busy") from None  # no session id: not theirs
        except session_store.RoomTaken:
            raise exceptions.PermissionDenied(ROOM_TAKEN, code="room_taken") from None
        gateway = get_gateway()
        token = gateway.mint_token(room=room, identity=identity, ttl=ttl)
        return Response({"token": token, "url": gateway.public_url, "room": room, "identity": identity})


class SessionCreateView(RateLimitedMixin, APIView):
    """POST /session {"room", "identity"} → 201 with the new session's id."""

    throttle_classes = [SessionRateThrottle]

    @extend_schema(
        request=RoomIdentitySerializer,
        responses={201: SessionCreatedSerializer, **errors(400, 409, 413, 415, 503), **_SECURITY_ERRORS},
    )
    def post(self, request: Request) -> Response:
        body = RoomIdentitySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            session = async_to_sync(lifecycle.start_session)(**body.validated_data, client_ip=client_ip(request))
        except session_store.RoomBusy as busy:
            raise Conflict(ROOM_BUSY, code="room_busy", session_id=str(busy.existing.id)) from None
        except session_store.RoomTaken:
            raise exceptions.PermissionDenied(ROOM_TAKEN, code="room_taken") from None
        except session_store.TooManySessions as bound:
            who = "this name" if bound.scope == "identity" else "your address"
            raise exceptions.Throttled(
                detail=f"Too many live sessions for {who} (at most {bound.limit}); stop one first.",
                code="too_many_sessions",
            ) from None
        except lifecycle.AgentStartFailed:
            raise ServiceUnavailable("The agent could not join the room; is LiveKit running?") from None
        return Response(SessionCreatedSerializer(session).data, status=status.HTTP_201_CREATED)


class SessionDetailView(APIView):
    """GET /session/{id} → its state; DELETE → stop its agent (204, also when already ended)."""

    @extend_schema(parameters=[SESSION_ID], responses={200: SessionSerializer, **errors(404)})
    def get(self, request: Request, session_id: str) -> Response:
        return Response(SessionSerializer(_get_session_or_404(session_id)).data)

    @extend_schema(
        parameters=[SESSION_ID],
        responses={204: OpenApiResponse(description="Stopped (or had already ended)."), **errors(404)},
    )
    def delete(self, request: Request, session_id: str) -> Response:
        session = _get_session_or_404(session_id)
        async_to_sync(lifecycle.stop_session)(session)
        return Response(status=status.HTTP_204_NO_CONTENT)


def single_query_params(request: Request, *names: str) -> dict[str, str]:
    """The named query parameters, each at most once: `?room=a&room=b` is a 400, not a guess."""
    repeated = [n for n in names if len(request.query_params.getlist(n)) > 1]
    if repeated:
        raise exceptions.ValidationError({n: ["Give this parameter once."] for n in repeated})
    return {n: request.query_params[n] for n in names if n in request.query_params}


class HistoryPagination(LimitOffsetPagination):
    """?limit=1..100&offset=0..; anything else is a 400 rather than a silent default."""

    default_limit = 20
    max_limit = 100

    def get_limit(self, request: Request) -> int:
        return self._parse(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return self._parse(request, self.offset_query_param, 0, 0, None)

    @staticmethod
    def _parse(request: Request, name: str, default: int, low: int, high: int | None) -> int:
        raw = single_query_params(request, name).get(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= (high or int(raw)):
            bound = f"{low} to {high}" if high else f"at least {low}"
            raise exceptions.ValidationError({name: [f"Must be a whole number, {bound}."]})
        return int(raw)

    def get_schema_operation_parameters(self, view: object) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: (1, self.max_limit), self.offset_query_param: (0, None)}
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"]["minimum"] = low
            if high:
                parameter["schema"]["maximum"] = high
        return parameters


@extend_schema_view(get=extend_schema(responses={200: SessionSerializer(many=True), **errors(400)}))
class SessionListView(generics.ListAPIView):
    """GET /transcripts → past and live sessions, newest first, paginated."""

    serializer_class = SessionSerializer
    queryset = VoiceSession.objects.order_by("-created_at", "-id")
    pagination_class = HistoryPagination


class TranscriptView(APIView):
    """GET /transcripts/{id} → the session and its final transcript lines, in order."""

    @extend_schema(parameters=[SESSION_ID], responses={200: TranscriptSerializer, **errors(404)})
    def get(self, request: Request, session_id: str) -> Response:
        session = _get_session_or_404(session_id)
        entries = TranscriptEntrySerializer(session.entries.order_by("seq"), many=True).data
        return Response({"session": SessionSerializer(session).data, "entries": entries})


class LivenessView(APIView):
    """The process is up and serving requests; nothing else is checked."""

    @extend_schema(responses={200: HealthSerializer})
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadinessView(APIView):
    """Ready when LiveKit answers and the channel layer carries a message."""

    @extend_schema(responses={200: HealthSerializer, 503: HealthSerializer})
    def get(self, request: Request) -> Response:
        checks = {"livekit": _check(_ping_livekit), "channel_layer": _check(_ping_channel_layer)}
        ready = all(value == "ok" for value in checks.values())
        return Response(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )


def _check(probe: object) -> str:
    try:
        async_to_sync(probe)()  # type: ignore[arg-type]
    except Exception:
        return "unavailable"
    return "ok"


async def _ping_livekit() -> None:
    await get_gateway().ping()


async def _ping_channel_layer() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "ping"})
    await asyncio.wait_for(layer.receive(channel), 2.0)


def endpoint_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """Catch-all route: unknown paths answer in the error shape even with DEBUG on."""
    return JsonResponse(error_body("not_found", "No such endpoint."), status=404)
