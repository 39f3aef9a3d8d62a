from __future__ import annotations

import re
import uuid

from flask import Blueprint, abort, current_app, render_template, send_from_directory
from werkzeug.wrappers import Response

from app.voice.contract import rules

pages = Blueprint("pages", __name__)

# The only files served from node_modules: the ES module build of livekit-client.
VENDOR_FILES = {"livekit-client.esm.mjs": "livekit-client/dist/livekit-client.esm.mjs"}
JAVASCRIPT = "text/javascript"


def html_pattern(pattern: str) -> str:
    """`pattern` as an HTML `pattern` attribute. Browsers compile that attribute with the
    RegExp `v` flag, where a literal "-" at either end of a character class must be escaped."""
    return re.sub(r"(?<=\[)-|(?<!\\)-(?=\])", r"\\-", pattern)


# The room/identity rule the API validates with, for the chat page's inputs and help text.
NAME_RULE = {
    "pattern": html_pattern(rules.NAME_PATTERN),
    "maxlength": rules.NAME_MAX_LENGTH,
    "text": rules.NAME_RULE_TEXT,
}


@pages.get("/")
def index() -> str:
    return render_template("index.html")


@pages.get("/chat")
def chat() -> str:
    return render_template("chat.html", name_rule=NAME_RULE, typed_max_chars=rules.TYPED_MAX_CHARS)


@pages.get("/history")
def history() -> str:
    return render_template("history.html")


@pages.get("/history/<session_id>")
def history_detail(session_id: str) -> str:
    """One conversation's transcript; the id is checked here so a typo gets a plain 404."""
    try:
        parsed = uuid.UUID(session_id)
    except ValueError:
        abort(404)
    return render_template("history_detail.html", session_id=str(parsed))


@pages.get("/vendor/<name>")
def vendor(name: str) -> Response:
    if name not in VENDOR_FILES:
        abort(404)
    # A module script is refused unless it is served as JavaScript.
    return send_from_directory(current_app.config["VENDOR_DIR"], VENDOR_FILES[name], mimetype=JAVASCRIPT)


@pages.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
