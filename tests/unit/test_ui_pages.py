"""The Flask UI's app factory and pages, through Flask's test client (no browser, no backend)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from ui import create_app


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    vendor = tmp_path / "livekit-client" / "dist"
    vendor.mkdir(parents=True)
    (vendor / "livekit-client.umd.js").write_text("window.LivekitClient = {};")
    app = create_app({"TESTING": True, "BACKEND_URL": "http://backend.test:8000", "VENDOR_DIR": str(tmp_path)})
    return app.test_client()


@pytest.mark.parametrize(("path", "title"), [("/", "Voice Agent"), ("/chat", "Talk"), ("/history", "History")])
def test_pages_render_with_the_backend_url(client: FlaskClient, path: str, title: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f"<title>{title}" in html
    assert 'data-backend-url="http://backend.test:8000"' in html
    assert 'lang="en"' in html and 'name="viewport"' in html


def test_chat_page_has_the_controls_and_live_regions(client: FlaskClient) -> None:
    html = client.get("/chat").get_data(as_text=True)
    for fragment in ('id="start"', 'id="stop"', 'role="status" aria-live="polite"', 'id="transcript"',
                     'aria-label="Microphone level"', '<label for="room">', '<label for="identity">',
                     "/vendor/livekit-client.umd.js", "chat.js"):
        assert fragment in html
    assert 'aria-current="page"' in html


def test_history_detail_checks_the_id(client: FlaskClient) -> None:
    session_id = uuid.uuid4()
    response = client.get(f"/history/{session_id}")
    assert response.status_code == 200
    assert f'data-session-id="{session_id}"' in response.get_data(as_text=True)
    assert client.get("/history/not-a-uuid").status_code == 404


def test_vendor_serves_only_the_livekit_bundle(client: FlaskClient) -> None:
    response = client.get("/vendor/livekit-client.umd.js")
    assert response.status_code == 200 and b"LivekitClient" in response.data
    response.close()
    assert client.get("/vendor/package.json").status_code == 404


def test_same_origin_backend_is_an_empty_url() -> None:
    app = create_app({"TESTING": True, "BACKEND_URL": ""})
    assert 'data-backend-url=""' in app.test_client().get("/chat").get_data(as_text=True)
    assert app.test_client().get("/healthz").get_json() == {"status": "ok"}
