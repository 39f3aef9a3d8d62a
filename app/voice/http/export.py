"""One conversation as a download: JSON (metadata, lines, timings, latencies) and WebVTT
captions. GET /transcripts/{id}/export.json and /export.vtt (views.py) build them here.

What the project records, and so what an export can say about time: the session's
created/started/ended times, and for each final line the moment it was stored
(`TranscriptEntry.created_at`), which is when the line became final: for a spoken user
line, when the person's turn was transcribed (just after they stopped speaking); for an
agent line, when its reply was done (played out, or cut off); for a typed line, when it
was sent. No line records when its speech began. An agent reply also carries its latency
(`contract.messages.Latency`: end of the person's turn to the agent's first audio, and its
parts), and the conversation its median (`latency_p50_ms`).

Caption timing, then, is an estimate anchored on what is known (see `caption_times`): a
cue ends when its line became final, and starts as long before that as saying its words
takes (WORD_MS each, at least MIN_CUE_MS), but never before the previous cue's end; a cue
that would then end before it starts (lines stored out of order, e.g. written late after
the database was briefly unreachable) lasts MIN_VISIBLE_MS instead. So cues are in line
order, never overlap, and every one lasts a moment. The JSON gives both the measured
`offset_ms` and these `caption_start_ms`/`caption_end_ms`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rest_framework.fields import DateTimeField

from app.voice.models import TranscriptEntry, VoiceSession
from app.voice.sessions import store

EXPORT_VERSION = 1
# Speech at about 150 words a minute: the time a line takes to say, for its cue's start.
WORD_MS = 400
MIN_CUE_MS = 1000
MIN_VISIBLE_MS = 500
VOICES = {"user": "User", "agent": "Agent"}
TYPED_MARK = "[typed] "
# Times as the rest of the API writes them (DRF: ISO 8601, UTC as "Z").
_iso = DateTimeField().to_representation


def time_origin(session: VoiceSession) -> datetime:
    """Offsets count from the session's start, or its creation when it never started."""
    return session.started_at or session.created_at


def _offset_ms(session: VoiceSession, moment: datetime) -> int:
    return max(0, round((moment - time_origin(session)).total_seconds() * 1000))


def caption_times(session: VoiceSession, entries: Sequence[TranscriptEntry]) -> list[tuple[int, int]]:
    """(start_ms, end_ms) of each line's cue, in line order, ordered and non-overlapping."""
    times: list[tuple[int, int]] = []
    previous_end = 0
    for entry in entries:
        final_at = _offset_ms(session, entry.created_at)
        speaking = max(MIN_CUE_MS, WORD_MS * len(entry.text.split()))
        start = max(previous_end, final_at - speaking)
        end = final_at if final_at > start else start + MIN_VISIBLE_MS
        times.append((start, end))
        previous_end = end
    return times


def conversation(session: VoiceSession, entries: Sequence[TranscriptEntry], session_data: dict[str, Any]) -> dict:
    """The JSON export; `session_data` is the session as GET /transcripts/{id} shows it."""
    lines = []
    for entry, (start, end) in zip(entries, caption_times(session, entries), strict=True):
        lines.append({
            "seq": entry.seq,
            "role": entry.role,
            "text": entry.text,
            "typed": entry.typed,
            "interrupted": entry.interrupted,
            "latency": entry.latency,
            "recorded_at": _iso(entry.created_at),
            "offset_ms": _offset_ms(session, entry.created_at),
            "caption_start_ms": start,
            "caption_end_ms": end,
        })
    return {
        "version": EXPORT_VERSION,
        "session": session_data,
        "time_origin": _iso(time_origin(session)),
        "latency_p50_ms": store.reply_latency_p50(entries),
        "lines": lines,
    }


def vtt_timestamp(ms: int) -> str:
    """HH:MM:SS.mmm (hours grow past two digits if they must)."""
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def vtt_escape(text: str) -> str:
    """Cue text: `&`, `<`, `>` as entities (so "-->" cannot appear either), and no blank
    line, which would end the cue: line breaks collapse into one, blank lines go."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "\n".join(line.strip() for line in escaped.splitlines() if line.strip())


def _note(text: str) -> str:
    """A NOTE block's text: no "-->" and no blank line."""
    return re.sub(r"\n\s*\n", "\n", text.replace("-->", "->"))


def webvtt(session: VoiceSession, entries: Sequence[TranscriptEntry]) -> str:
    """A WebVTT file: one cue per line, `<v User>`/`<v Agent>`, typed lines marked
    (class `typed` and a visible "[typed]"), cut-off replies with class `interrupted`."""
    blocks = ["WEBVTT", _note(
        f"NOTE\nConversation {session.id} in room {session.room} with {session.identity}, "
        f"from {_iso(time_origin(session))}.\n"
        "Cue times count from the session's start. A cue ends when its line became final "
        f"(was recorded); its start is estimated: {WORD_MS} ms a word, at least {MIN_CUE_MS} ms, "
        "never before the previous cue's end."
    )]
    for entry, (start, end) in zip(entries, caption_times(session, entries), strict=True):
        classes = "".join(f".{name}" for name, on in (("typed", entry.typed), ("interrupted", entry.interrupted)) if on)
        voice = VOICES.get(entry.role, "Speaker")
        text = (TYPED_MARK if entry.typed else "") + vtt_escape(entry.text)
        blocks.append(f"{entry.seq}\n{vtt_timestamp(start)} --> {vtt_timestamp(end)}\n<v{classes} {voice}>{text}</v>")
    return "\n\n".join(blocks) + "\n"


def filename(session: VoiceSession, extension: str) -> str:
    """conversation-<room>-<YYYY-MM-DD-HHMMSS>.<extension>, UTC, in safe characters only."""
    room = re.sub(r"[^A-Za-z0-9_.-]", "_", session.room).strip(".") or "room"
    return f"conversation-{room}-{time_origin(session):%Y-%m-%d-%H%M%S}.{extension}"
