from __future__ import annotations

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
    return render_template("chat.html", backend_url=current_app.config["BACKEND_URL"])


@pages.get("/history")
def history() -> str:
    return render_template("history.html", backend_url=current_app.config["BACKEND_URL"])


@pages.get("/vendor/<name>")
def vendor(name: str) -> Response:
    if name not in VENDOR_FILES:
        abort(404)
    return send_from_directory(current_app.config["VENDOR_DIR"], VENDOR_FILES[name])


@pages.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
