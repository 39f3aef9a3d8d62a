"""Rules a client must follow or may rely on, defined once and rendered into the pages.

The serializers validate with these, the OpenAPI schema publishes them, and the Flask
UI puts them into its HTML (the name pattern, the page size), so no client repeats them.
"""

from __future__ import annotations

from enum import StrEnum

# Room and identity names: what LiveKit accepts everywhere and a URL carries unescaped.
NAME_MAX_LENGTH = 128
NAME_PATTERN = rf"[A-Za-z0-9_.-]{{1,{NAME_MAX_LENGTH}}}"
NAME_RULE_TEXT = f"Use 1 to {NAME_MAX_LENGTH} characters: letters, digits, '_', '.', '-'."

# A line typed to the agent: the page's input stops here, and the agent refuses longer ones.
TYPED_MAX_CHARS = 1000

# GET /transcripts paging: ?limit (default, at most) and ?offset.
HISTORY_PAGE_SIZE = 20
HISTORY_MAX_PAGE_SIZE = 100


class HealthStatus(StrEnum):
    """The answers of /healthz and /readyz, for the whole and for each check."""

    OK = "ok"
    UNAVAILABLE = "unavailable"


def ws_path(session_id: object) -> str:
    """Where a session's transcript socket lives (POST /session returns it as `ws_path`)."""
    return f"/ws/transcript/{session_id}"
