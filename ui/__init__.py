"""Flask UI: server-rendered pages whose static JS runs the browser voice flow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENDOR_DIR = ROOT / ".tools" / "npm" / "node_modules"
# The pages take no request bodies; ui.asgi refuses a larger one before Flask sees it.
MAX_BODY_BYTES = 16 * 1024


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Application factory; settings come from the environment unless `config` overrides them."""
    app = Flask(__name__)
    app.config.from_mapping(
        # Where the browser reaches the Django backend. Empty means same origin (production).
        BACKEND_URL=os.environ.get("BACKEND_URL", "http://127.0.0.1:8000").rstrip("/"),
        VENDOR_DIR=os.environ.get("UI_VENDOR_DIR", str(DEFAULT_VENDOR_DIR)),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    if config:
        app.config.update(config)

    from ui.security import add_headers, csp_nonce
    from ui.views import pages

    app.register_blueprint(pages)
    app.after_request(add_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    return app
