"""GET /transcripts (paginated, newest first) and GET /transcripts/{id} (metadata + finals)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from app.voice.models import TranscriptEntry, VoiceSession
from tests.unit.support import assert_error, visitor_of_sync

pytestmark = pytest.mark.django_db


def make_sessions(count: int, owner: APIClient) -> list[VoiceSession]:
    """Ended sessions of the visitor `owner`, created a minute apart; returned newest first."""
    now = timezone.now()
    visitor = visitor_of_sync(owner)
    sessions = []
    for i in range(count):
        session = VoiceSession.objects.create(
            room=f"room-{i}", identity="alice", status="ended", end_reason="deleted", visitor=visitor
        )
        VoiceSession.objects.filter(pk=session.pk).update(
            created_at=now - timedelta(minutes=count - i),
            started_at=now - timedelta(minutes=count - i),
            ended_at=now - timedelta(minutes=count - i) + timedelta(seconds=42),
        )
        sessions.append(session)
    return sessions[::-1]


def test_list_is_newest_first_and_paginated(client: APIClient) -> None:
    newest_first = [str(s.id) for s in make_sessions(5, client)]
    page = client.get("/transcripts", {"limit": 2}).json()
    assert page["count"] == 5
    assert [s["session_id"] for s in page["results"]] == newest_first[:2]
    assert page["previous"] is None and "offset=2" in page["next"]
    page = client.get("/transcripts", {"limit": 2, "offset": 4}).json()
    assert [s["session_id"] for s in page["results"]] == newest_first[4:]
    assert page["next"] is None
    first = client.get("/transcripts").json()["results"][0]
    assert set(first) == {
        "session_id", "room", "identity", "status", "end_reason",
        "created_at", "started_at", "ended_at", "duration_seconds",
    }
    assert (first["status"], first["end_reason"], first["duration_seconds"]) == ("ended", "deleted", 42.0)


def test_pages_are_bounded(client: APIClient) -> None:
    make_sessions(25, client)
    assert len(client.get("/transcripts").json()["results"]) == 20  # default page
    assert len(client.get("/transcripts", {"limit": 100}).json()["results"]) == 25


@pytest.mark.parametrize(
    "query",
    ["limit=abc", "limit=0", "limit=101", "limit=-3", "limit=1e9", "limit=%EF%BC%91",
     "offset=x", "offset=-1", "limit=5&limit=6", "offset=1&offset=2", "limit="],
)
def test_bad_paging_values_are_400(client: APIClient, query: str) -> None:
    error = assert_error(client.get(f"/transcripts?{query}"), 400, "invalid_request")
    assert query.split("=")[0] in error["message"]


def test_empty_history_is_an_empty_page(client: APIClient) -> None:
    assert client.get("/transcripts").json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_detail_has_metadata_and_finals_in_order(client: APIClient) -> None:
    session = make_sessions(1, client)[0]
    for seq, role, text in [(7, "agent", "You said: hi"), (1, "agent", "Hello!"), (4, "user", "hi")]:
        TranscriptEntry.objects.create(session=session, seq=seq, role=role, text=text)
    body = client.get(f"/transcripts/{session.id}").json()
    assert body["session"]["session_id"] == str(session.id)
    assert body["session"]["room"] == "room-0"
    assert [(e["seq"], e["role"], e["text"]) for e in body["entries"]] == [
        (1, "agent", "Hello!"), (4, "user", "hi"), (7, "agent", "You said: hi"),
    ]
    keys = {"seq", "role", "text", "typed", "interrupted", "latency", "created_at"}
    assert all(set(e) == keys for e in body["entries"])
    assert body["latency_p50_ms"] is None  # no reply here has a latency


def test_detail_has_each_lines_added_keys_and_the_reply_latency_p50(client: APIClient) -> None:
    session = make_sessions(1, client)[0]

    def latency(total: int) -> dict[str, int | None]:
        return {"total_ms": total, "end_of_turn_ms": 500, "stt_ms": 120, "llm_ms": 40, "tts_ms": 90}

    lines = [
        (1, "agent", "Hello!", {"interrupted": True}),
        (2, "user", "typed hello", {"typed": True}),
        (3, "agent", "You said: typed hello", {"latency": latency(700)}),
        (4, "user", "spoken", {}),
        (5, "agent", "You said: spoken", {"latency": latency(1300)}),
        (6, "user", "again", {}),
        (7, "agent", "You said: again", {"latency": latency(900)}),
    ]
    for seq, role, text, extra in lines:
        TranscriptEntry.objects.create(session=session, seq=seq, role=role, text=text, **extra)
    body = client.get(f"/transcripts/{session.id}").json()
    entries = {e["seq"]: e for e in body["entries"]}
    assert (entries[1]["interrupted"], entries[1]["latency"]) == (True, None)
    assert (entries[2]["typed"], entries[4]["typed"]) == (True, False)
    assert entries[5]["latency"] == latency(1300)
    assert body["latency_p50_ms"] == 900  # the median of 700, 1300 and 900


def test_detail_of_a_session_without_finals_has_no_entries(client: APIClient) -> None:
    session = make_sessions(1, client)[0]
    assert client.get(f"/transcripts/{session.id}").json()["entries"] == []


@pytest.mark.parametrize("raw_id", ["7d2c1c0e-5f0b-4d3e-9a51-2b6f0c8e4a10", "nope", "12", "x" * 200])
def test_detail_of_an_unknown_or_malformed_id_is_404(client: APIClient, raw_id: str) -> None:
    assert_error(client.get(f"/transcripts/{raw_id}"), 404, "not_found")
