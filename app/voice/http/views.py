"""HTTP edge: validate, call the session services, shape the answer.

The views are async (app.voice.http.async_api): they run on the event loop and await the
services (app.voice.lifecycle, app.voice.sessions.store), which are async too.

Domain errors (room busy, room taken, identity taken, too many sessions, agent start
failed) rise from the services and become HTTP answers in app.voice.http.errors, not here.

Every session belongs to the visitor who started it (app.voice.http.visitors): these views
read, list and stop the asker's own sessions only. Another visitor's session id is answered
exactly like an unknown one (404), so nobody learns that it exists.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Iterable
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from app.voice import lifecycle
from app.voice.contract import rules
from app.voice.http import export
from app.voice.http.api_schema import SESSION_ID, errors
from app.voice.http.async_api import AsyncAPIView
from app.voice.http.serializers import (
    ConversationExportSerializer,
    HealthSerializer,
    RoomIdentitySerializer,
    SessionCreatedSerializer,
    SessionSerializer,
    TokenSerializer,
    TranscriptEntrySerializer,
    TranscriptSerializer,
)
from app.voice.http.throttling import (
    RateLimitedMixin,
    SessionRateThrottle,
    TokenRateThrottle,
    client_ip,
)
from app.voice.http.visitors import visitor_of
from app.voice.livekit_gateway import get_gateway
from app.voice.models import TranscriptEntry, VoiceSession
from app.voice.sessions import store
from app.voice.sessions.groups import channel_layer

log = logging.getLogger("app.voice.http")


async def _own_session_or_404(request: Request, raw_id: str) -> VoiceSession:
    """The asker's own session; another visitor's is as unknown as a made-up id."""
    session_id = store.parse_session_id(raw_id)
    session = await store.get_own_session(session_id, visitor_of(request)) if session_id else None
    if session is None:
        raise exceptions.NotFound("No session with this id.")
    return session


class TokenView(RateLimitedMixin, AsyncAPIView):
    """GET /token?room=R&identity=I → a LiveKit JWT that joins room R only.

    Minting claims R for I for the token's lifetime; a room another identity holds is refused,
    and so is an identity another visitor used first. The JWT is for the claim's own LiveKit
    room (sessions.media_rooms): no token of an earlier claim of R can join it.
    """

    throttle_classes = [TokenRateThrottle]

    @extend_schema(
        parameters=[RoomIdentitySerializer],
        responses={200: TokenSerializer, **errors(400, 403, 409, 429)},
    )
    async def get(self, request: Request) -> Response:
        params = RoomIdentitySerializer(data=single_query_params(request, "room", "identity"))
        params.is_valid(raise_exception=True)
        room, identity = params.validated_data["room"], params.validated_data["identity"]
        ttl = timedelta(seconds=settings.LIVEKIT_TOKEN_TTL_SECONDS)
        media_room = await store.claim_room(room, identity, ttl, visitor=visitor_of(request))
        token = get_gateway().mint_token(room=media_room, identity=identity, ttl=ttl)
        await _create_room(room, media_room)
        return Response({"token": token, "url": settings.LIVEKIT_PUBLIC_URL, "room": room, "identity": identity})


async def _create_room(room: str, media_room: str) -> None:
    """The browser joins the room before it asks for a session, and LiveKit does not create
    rooms on join: create it now. If LiveKit is down the token is still returned (the page's
    join fails and says so), as before rooms were created explicitly."""
    try:
        await get_gateway().create_room(media_room)
    except Exception as exc:
        log.warning("room.create_failed", extra={"room": room, "livekit_room": media_room, "error": repr(exc)})


class SessionCreateView(RateLimitedMixin, AsyncAPIView):
    """POST /session {"room", "identity"} → 201 with the new session's id."""

    throttle_classes = [SessionRateThrottle]

    @extend_schema(
        request=RoomIdentitySerializer,
        responses={201: SessionCreatedSerializer, **errors(400, 403, 409, 413, 415, 429, 503)},
    )
    async def post(self, request: Request) -> Response:
        body = RoomIdentitySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        session = await lifecycle.start_session(
            **body.validated_data, client_ip=client_ip(request), visitor=visitor_of(request)
        )
        return Response(SessionCreatedSerializer(session).data, status=status.HTTP_201_CREATED)


class SessionDetailView(AsyncAPIView):
    """GET /session/{id} → its state; DELETE → stop its agent (204, also when already ended)."""

    @extend_schema(parameters=[SESSION_ID], responses={200: SessionSerializer, **errors(404)})
    async def get(self, request: Request, session_id: str) -> Response:
        return Response(SessionSerializer(await _own_session_or_404(request, session_id)).data)

    @extend_schema(
        parameters=[SESSION_ID],
        responses={204: OpenApiResponse(description="Stopped (or had already ended)."), **errors(404)},
    )
    async def delete(self, request: Request, session_id: str) -> Response:
        session = await _own_session_or_404(request, session_id)
        await lifecycle.stop_session(session)
        return Response(status=status.HTTP_204_NO_CONTENT)


def single_query_params(request: Request, *names: str) -> dict[str, str]:
    """The named query parameters, each at most once: `?room=a&room=b` is a 400, not a guess."""
    repeated = [n for n in names if len(request.query_params.getlist(n)) > 1]
    if repeated:
        raise exceptions.ValidationError({n: ["Give this parameter once."] for n in repeated})
    return {n: request.query_params[n] for n in names if n in request.query_params}


class HistoryPagination(LimitOffsetPagination):
    """?limit=1..100&offset=0..; anything else is a 400 rather than a silent default."""

    default_limit = rules.HISTORY_PAGE_SIZE
    max_limit = rules.HISTORY_MAX_PAGE_SIZE

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

    def get_schema_operation_parameters(self, view: APIView) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: (1, self.max_limit), self.offset_query_param: (0, None)}
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"]["minimum"] = low
            if high:
                parameter["schema"]["maximum"] = high
        return parameters


@extend_schema_view(get=extend_schema(responses={200: SessionSerializer(many=True), **errors(400)}))
class SessionListView(AsyncAPIView, generics.ListAPIView):
    """GET /transcripts → the asker's past and live sessions, newest first, paginated."""

    serializer_class = SessionSerializer
    pagination_class = HistoryPagination

    def get_queryset(self) -> QuerySet[VoiceSession]:
        return store.sessions_of(visitor_of(self.request))

    async def get(self, request: Request) -> Response:  # type: ignore[override]  # ListAPIView's is sync
        # DRF's own listing (count, page, serialise), in one thread hop for its queries.
        return await sync_to_async(self.list)(request)


class TranscriptView(AsyncAPIView):
    """GET /transcripts/{id} → the session and its final transcript lines, in order."""

    @extend_schema(parameters=[SESSION_ID], responses={200: TranscriptSerializer, **errors(404)})
    async def get(self, request: Request, session_id: str) -> Response:
        session = await _own_session_or_404(request, session_id)
        entries = await store.final_transcripts(session.id)
        return Response({
            "session": SessionSerializer(session).data,
            "entries": TranscriptEntrySerializer(entries, many=True).data,
            "latency_p50_ms": store.reply_latency_p50(entries),
        })


class _JsonErrorsWhateverTheAccept(BaseContentNegotiation):
    """An export answers its own file, or an error in JSON, whatever the Accept header asks
    (DRF's negotiation would refuse `Accept: text/vtt` with a 406, and read `?format=`)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class _TranscriptExportView(AsyncAPIView):
    """A conversation as a file download (app.voice.http.export): the asker's own only."""

    content_negotiation_class = _JsonErrorsWhateverTheAccept
    extension = ""
    content_type = ""

    async def get(self, request: Request, session_id: str) -> HttpResponse:
        session = await _own_session_or_404(request, session_id)
        entries = await store.final_transcripts(session.id)
        response = HttpResponse(self.render(session, entries), content_type=self.content_type)
        response["Content-Disposition"] = f'attachment; filename="{export.filename(session, self.extension)}"'
        response["Cache-Control"] = "private, no-store"
        return response

    def render(self, session: VoiceSession, entries: list[TranscriptEntry]) -> str:
        raise NotImplementedError


class TranscriptJsonExportView(_TranscriptExportView):
    """GET /transcripts/{id}/export.json → the conversation as a JSON download."""

    extension, content_type = "json", "application/json"

    @extend_schema(
        operation_id="transcripts_export_json",
        parameters=[SESSION_ID],
        responses={200: OpenApiResponse(ConversationExportSerializer, description=(
            "A download (Content-Disposition: attachment): the session, its final lines in order with "
            "their times and latencies, and the median reply latency."
        )), **errors(404)},
    )
    async def get(self, request: Request, session_id: str) -> HttpResponse:
        return await super().get(request, session_id)

    def render(self, session: VoiceSession, entries: list[TranscriptEntry]) -> str:
        document = export.conversation(session, entries, SessionSerializer(session).data)
        return json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2) + "\n"


class TranscriptVttExportView(_TranscriptExportView):
    """GET /transcripts/{id}/export.vtt → the conversation as WebVTT captions, a download."""

    extension, content_type = "vtt", "text/vtt; charset=utf-8"

    @extend_schema(
        operation_id="transcripts_export_vtt",
        parameters=[SESSION_ID],
        responses={(200, "text/vtt"): OpenApiResponse(OpenApiTypes.STR, description=(
            "A download (Content-Disposition: attachment): WebVTT, one cue per final line, "
            "<v User>/<v Agent>, times from the session's start."
        )), **errors(404)},
    )
    async def get(self, request: Request, session_id: str) -> HttpResponse:
        return await super().get(request, session_id)

    def render(self, session: VoiceSession, entries: list[TranscriptEntry]) -> str:
        return export.webvtt(session, entries)


class LivenessView(AsyncAPIView):
    """The process is up and serving requests; nothing else is checked."""

    @extend_schema(responses={200: HealthSerializer})
    async def get(self, request: Request) -> Response:
        return Response({"status": rules.HealthStatus.OK})


class ReadinessView(AsyncAPIView):
    """Ready when LiveKit answers and the channel layer carries a message."""

    @extend_schema(responses={200: HealthSerializer, 503: HealthSerializer})
    async def get(self, request: Request) -> Response:
        livekit, layer = await asyncio.gather(_check(_ping_livekit()), _check(_ping_channel_layer()))
        checks = {"livekit": livekit, "channel_layer": layer}
        ready = all(value == rules.HealthStatus.OK for value in checks.values())
        return Response(
            {"status": rules.HealthStatus.OK if ready else rules.HealthStatus.UNAVAILABLE, "checks": checks},
            status=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )


async def _check(probe: Awaitable[None]) -> rules.HealthStatus:
    try:
        await probe
    except Exception:
        return rules.HealthStatus.UNAVAILABLE
    return rules.HealthStatus.OK


async def _ping_livekit() -> None:
    await get_gateway().ping()


async def _ping_channel_layer() -> None:
    layer = channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "ping"})
    await asyncio.wait_for(layer.receive(channel), 2.0)
