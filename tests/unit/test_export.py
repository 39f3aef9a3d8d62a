"""GET /transcripts/{id}/export.json and /export.vtt: a conversation as a download, the
asker's own only (app/voice/http/export.py says how its times are made)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
import schemathesis
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient
from schemathesis.specs.openapi import checks

from app.voice.http import export
from app.voice.models import TranscriptEntry, VoiceSession
from tests.unit.support import assert_error, visitor_of_sync

pytestmark = pytest.mark.django_db

START = timezone.now().replace(microsecond=0) - timedelta(hours=1)
LATENCY = {"total_ms": 820, "end_of_turn_ms": 500, "stt_ms": 120, "llm_ms": 40, "tts_ms": 90}
# (seq, role, text, seconds after the start the line became final, extra fields)
LINES = [
    (1, "agent", "Hello! How can I help?", 2.5, {}),
    (2, "user", "What is <b>bold</b> & why?", 7.0, {}),
    (3, "agent", "You said: What is <b>bold</b> & why?", 11.2, {"latency": LATENCY}),
    (4, "user", "typed --> hello", 15.0, {"typed": True}),
    (5, "agent", "You said: typed --> hello", 15.4, {"latency": {**LATENCY, "total_ms": 610}, "interrupted": True}),
]
SCHEMA = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
CUE_TIMING = re.compile(r"^(\d{2,}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2,}):(\d{2}):(\d{2})\.(\d{3})$")


def make_session(owner: APIClient, room: str = "room-7", lines: list = LINES) -> VoiceSession:
    session = VoiceSession.objects.create(
        room=room, identity="alice", status="ended", end_reason="deleted", visitor=visitor_of_sync(owner)
    )
    VoiceSession.objects.filter(pk=session.pk).update(
        created_at=START - timedelta(seconds=1), started_at=START, ended_at=START + timedelta(seconds=30)
    )
    # Stored in another order than seq: the export orders by seq, like GET /transcripts/{id}.
    for seq, role, text, at, extra in sorted(lines, key=lambda line: -line[0]):
        entry = TranscriptEntry.objects.create(session=session, seq=seq, role=role, text=text, **extra)
        TranscriptEntry.objects.filter(pk=entry.pk).update(created_at=START + timedelta(seconds=at))
    session.refresh_from_db()
    return session


def ms(timestamp: str) -> int:
    hours, minutes, rest = timestamp.split(":")
    seconds, millis = rest.split(".")
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def parse_vtt(text: str) -> tuple[str, list[dict]]:
    """The header line and the cues (id, start, end, payload) of a WebVTT file, strictly:
    blocks separated by blank lines, NOTE blocks skipped, each cue with a timing line."""
    assert "\r" not in text and text.endswith("\n")
    header, *blocks = text.rstrip("\n").split("\n\n")
    cues = []
    for block in blocks:
        lines = block.split("\n")
        assert all(line.strip() for line in lines), block  # no blank line inside a block
        if lines[0].startswith("NOTE"):
            assert "-->" not in block
            continue
        identifier, timing, *payload = lines
        match = CUE_TIMING.match(timing)
        assert match, timing
        start, end = (ms(part) for part in timing.split(" --> "))
        assert payload and not any("-->" in line for line in payload), block
        cues.append({"id": identifier, "start": start, "end": end, "payload": "\n".join(payload)})
    return header, cues


def disposition_filename(response) -> str:
    disposition = response["Content-Disposition"]
    match = re.fullmatch(r'attachment; filename="([A-Za-z0-9_.-]+)"', disposition)
    assert match, disposition
    return match.group(1)


def test_json_export_has_the_session_its_lines_in_order_timings_and_latencies(client: APIClient) -> None:
    session = make_session(client)
    response = client.get(f"/transcripts/{session.id}/export.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert disposition_filename(response) == f"conversation-room-7-{START:%Y-%m-%d-%H%M%S}.json"
    assert "no-store" in response["Cache-Control"]
    document = json.loads(response.content)

    assert document["version"] == 1
    meta = document["session"]
    assert (meta["session_id"], meta["room"], meta["identity"]) == (str(session.id), "room-7", "alice")
    assert (meta["status"], meta["end_reason"], meta["duration_seconds"]) == ("ended", "deleted", 30.0)
    assert datetime.fromisoformat(meta["started_at"]) == START
    assert datetime.fromisoformat(meta["ended_at"]) == START + timedelta(seconds=30)
    assert datetime.fromisoformat(document["time_origin"]) == START
    assert document["latency_p50_ms"] == 715  # the median of 820 and 610

    lines = document["lines"]
    assert [(line["seq"], line["role"], line["text"]) for line in lines] == [
        (seq, role, text) for seq, role, text, _, _ in LINES
    ]
    for line, (_, _, _, at, extra) in zip(lines, LINES, strict=True):
        assert line["offset_ms"] == round(at * 1000)
        assert datetime.fromisoformat(line["recorded_at"]) == START + timedelta(seconds=at)
        assert line["typed"] == extra.get("typed", False)
        assert line["interrupted"] == extra.get("interrupted", False)
        assert line["latency"] == extra.get("latency")
        # The cue ends when the line became final, unless an earlier cue left no room.
        assert 0 <= line["caption_start_ms"] < line["caption_end_ms"]
    ends = [line["caption_end_ms"] for line in lines]
    starts = [line["caption_start_ms"] for line in lines]
    assert all(end <= following for end, following in zip(ends, starts[1:], strict=False))
    assert ends[:4] == [2500, 7000, 11200, 15000]
    # "Hello! How can I help?": 5 words at 400 ms each, before it became final at 2.5 s.
    assert starts[0] == 500
    # Final 0.4 s after the line before: it starts when that one ends, and keeps its end.
    assert (starts[4], ends[4]) == (15000, 15400)


def test_vtt_export_is_valid_webvtt_one_cue_per_line(client: APIClient) -> None:
    session = make_session(client)
    response = client.get(f"/transcripts/{session.id}/export.vtt")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/vtt; charset=utf-8"
    assert disposition_filename(response) == f"conversation-room-7-{START:%Y-%m-%d-%H%M%S}.vtt"
    header, cues = parse_vtt(response.content.decode())
    assert header == "WEBVTT"
    assert len(cues) == len(LINES)
    assert [cue["id"] for cue in cues] == [str(seq) for seq, *_ in LINES]
    for cue in cues:
        assert cue["start"] < cue["end"]
    for cue, following in zip(cues, cues[1:], strict=False):
        assert cue["end"] <= following["start"]  # ordered, never overlapping
    # The same times as the JSON's captions.
    document = client.get(f"/transcripts/{session.id}/export.json").json()
    assert [(c["start"], c["end"]) for c in cues] == [
        (line["caption_start_ms"], line["caption_end_ms"]) for line in document["lines"]
    ]
    assert cues[0]["payload"] == "<v Agent>Hello! How can I help?</v>"
    assert cues[1]["payload"] == "<v User>What is &lt;b&gt;bold&lt;/b&gt; &amp; why?</v>"
    assert cues[2]["payload"] == "<v Agent>You said: What is &lt;b&gt;bold&lt;/b&gt; &amp; why?</v>"
    assert cues[3]["payload"] == "<v.typed User>[typed] typed --&gt; hello</v>"  # typed: marked
    assert cues[4]["payload"] == "<v.interrupted Agent>You said: typed --&gt; hello</v>"


def test_vtt_timestamps_and_escaping() -> None:
    assert export.vtt_timestamp(0) == "00:00:00.000"
    assert export.vtt_timestamp(3_723_045) == "01:02:03.045"
    assert export.vtt_timestamp(100 * 3_600_000) == "100:00:00.000"
    # A blank line would end the cue early: line breaks collapse, blank lines go.
    assert export.vtt_escape("a <i>&</i>\n\n\nb\r\n c ") == "a &lt;i&gt;&amp;&lt;/i&gt;\nb\nc"


def test_a_line_with_blank_lines_stays_one_cue(client: APIClient) -> None:
    session = make_session(client, lines=[(1, "user", "one\n\ntwo\n\n", 3.0, {})])
    _, cues = parse_vtt(client.get(f"/transcripts/{session.id}/export.vtt").content.decode())
    assert [cue["payload"] for cue in cues] == ["<v User>one\ntwo</v>"]


def test_lines_stored_out_of_time_order_still_make_ordered_cues(client: APIClient) -> None:
    # Finals the database refused are written later, so a later seq can carry an earlier time.
    session = make_session(client, lines=[(1, "agent", "Hi.", 9.0, {}), (2, "user", "hey", 4.0, {}),
                                          (3, "agent", "You said: hey", 9.0, {})])
    _, cues = parse_vtt(client.get(f"/transcripts/{session.id}/export.vtt").content.decode())
    assert [(cue["start"], cue["end"]) for cue in cues] == [(8000, 9000), (9000, 9500), (9500, 10000)]


def test_a_session_without_lines_exports_empty_but_valid_files(client: APIClient) -> None:
    session = make_session(client, lines=[])
    document = client.get(f"/transcripts/{session.id}/export.json").json()
    assert document["lines"] == [] and document["latency_p50_ms"] is None
    assert document["session"]["session_id"] == str(session.id)
    header, cues = parse_vtt(client.get(f"/transcripts/{session.id}/export.vtt").content.decode())
    assert (header, cues) == ("WEBVTT", [])


def test_a_session_that_never_started_counts_from_its_creation(client: APIClient) -> None:
    session = make_session(client, lines=[(1, "agent", "Hi.", 1.0, {})])
    VoiceSession.objects.filter(pk=session.pk).update(started_at=None)
    document = client.get(f"/transcripts/{session.id}/export.json").json()
    assert datetime.fromisoformat(document["time_origin"]) == START - timedelta(seconds=1)
    assert document["lines"][0]["offset_ms"] == 2000


def test_another_visitors_session_is_404_like_an_unknown_one(client: APIClient) -> None:
    session = make_session(client)
    stranger = APIClient()
    for suffix in ("json", "vtt"):
        assert client.get(f"/transcripts/{session.id}/export.{suffix}").status_code == 200
        assert_error(stranger.get(f"/transcripts/{session.id}/export.{suffix}"), 404, "not_found")
    # A session of nobody's (made before visitors existed) is nobody's to export.
    orphan = VoiceSession.objects.create(room="old", identity="alice", status="ended")
    assert_error(client.get(f"/transcripts/{orphan.id}/export.json"), 404, "not_found")


@pytest.mark.parametrize("raw_id", ["7d2c1c0e-5f0b-4d3e-9a51-2b6f0c8e4a10", "nope", "12", "x" * 200])
@pytest.mark.parametrize("suffix", ["json", "vtt"])
def test_an_unknown_or_malformed_id_is_a_json_404(client: APIClient, raw_id: str, suffix: str) -> None:
    assert_error(client.get(f"/transcripts/{raw_id}/export.{suffix}"), 404, "not_found")


@pytest.mark.parametrize("accept", ["text/vtt", "application/xml", "text/html"])
def test_the_accept_header_changes_nothing(client: APIClient, accept: str) -> None:
    session = make_session(client)
    response = client.get(f"/transcripts/{session.id}/export.vtt?format=xml", HTTP_ACCEPT=accept)
    assert response.status_code == 200 and response.content.startswith(b"WEBVTT\n")
    # An error is JSON whatever was asked for.
    assert_error(client.get(f"/transcripts/{uuid.uuid4()}/export.vtt", HTTP_ACCEPT=accept), 404, "not_found")


def test_other_methods_are_refused_in_the_error_shape(client: APIClient) -> None:
    session = make_session(client)
    assert_error(client.post(f"/transcripts/{session.id}/export.json"), 405)
    assert_error(client.delete(f"/transcripts/{session.id}/export.vtt"), 405)


def test_an_odd_room_name_makes_a_safe_filename(client: APIClient) -> None:
    session = make_session(client, room="..we ird/ro\"om", lines=[])
    assert export.filename(session, "vtt") == f"conversation-we_ird_ro_om-{START:%Y-%m-%d-%H%M%S}.vtt"


@pytest.mark.parametrize("suffix", ["json", "vtt"])
def test_an_export_is_what_the_openapi_schema_says(client: APIClient, suffix: str) -> None:
    """The fuzz test only ever meets 404s here (its ids are random): check a real export."""
    session = make_session(client)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    path = f"/transcripts/{{session_id}}/export.{suffix}"
    case = SCHEMA[path]["GET"].Case(path_parameters={"session_id": str(session.id)})
    with httpx.Client(transport=httpx.WSGITransport(app=get_wsgi_application()), base_url="http://testserver",
                      cookies={settings.SESSION_COOKIE_NAME: cookie}) as http:
        response = http.get(f"/transcripts/{session.id}/export.{suffix}")
    assert response.status_code == 200
    case.validate_response(response, checks=[
        checks.status_code_conformance, checks.content_type_conformance, checks.response_schema_conformance,
    ])
