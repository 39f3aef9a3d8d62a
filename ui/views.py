from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, render_template, send_from_directory
from werkzeug.wrappers import Response

pages = Blueprint("pages", __name__)

# The only files served from node_modules: the browser build of livekit-client.
VENDOR_FILES = {"livekit-client.umd.js": "livekit-client/dist/livekit-client.umd.js"}


@pages.get("/")
def index() -> str:
    return render_template("index.html")


@pages.get("/chat")
def chat() -> str:
    return render_template("chat.html")


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
    return send_from_directory(current_app.config["VENDOR_DIR"], VENDOR_FILES[name])


@pages.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
