"""The Flask UI's app factory and pages, through Flask's test client (no browser, no backend)."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from app.voice.contract import rules
from ui import create_app
from ui.views import html_pattern

STATIC = Path(__file__).resolve().parents[2] / "ui" / "static"

# Fixed, not random: every test worker must collect the same parameters.
UNKNOWN_ID = "1f9f3c63-8502-4075-88f8-1153a36b6550"


class Elements(HTMLParser):
    """Every start tag's attributes by id, the scripts in order, and the text of spans with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.scripts: list[dict[str, str | None]] = []
        self.text_of: dict[str, str] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.by_id[str(attributes["id"])] = attributes
        if tag == "span" and attributes.get("id"):
            self._open.append(str(attributes["id"]))
            self.text_of[str(attributes["id"])] = ""
        if tag == "script":
            self.scripts.append(attributes)

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            self.text_of[element_id] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._open:
            self._open.pop()


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    vendor = tmp_path / "livekit-client" / "dist"
    vendor.mkdir(parents=True)
    (vendor / "livekit-client.esm.mjs").write_text("export class Room {}")
    app = create_app({"TESTING": True, "BACKEND_URL": "http://backend.test:8000", "VENDOR_DIR": str(tmp_path)})
    return app.test_client()


def page(client: FlaskClient, path: str) -> tuple[str, Elements]:
    html = client.get(path).get_data(as_text=True)
    elements = Elements()
    elements.feed(html)
    return html, elements


@pytest.mark.parametrize(("path", "title"), [("/", "Voice Agent"), ("/chat", "Talk"), ("/history", "History")])
def test_pages_render_with_the_backend_url(client: FlaskClient, path: str, title: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f"<title>{title}" in html
    assert 'data-backend-url="http://backend.test:8000"' in html
    assert 'lang="en"' in html and 'name="viewport"' in html


def test_chat_page_has_the_controls_and_live_regions(client: FlaskClient) -> None:
    html, _ = page(client, "/chat")
    for fragment in ('id="start"', 'id="stop"', 'role="status" aria-live="polite"', 'id="transcript"',
                     'aria-label="Microphone level"', '<label for="room">', '<label for="identity">',
                     'role="alert"'):
        assert fragment in html
    assert 'aria-current="page"' in html


def test_chat_page_has_the_microphone_controls_and_the_text_box(client: FlaskClient) -> None:
    html, elements = page(client, "/chat")
    # Type or talk: the microphone's button beside a labelled text box and Send, off until live.
    assert elements.by_id["mute"]["aria-pressed"] == "false"
    for control in ("mute", "say-text", "send"):
        assert "disabled" in elements.by_id[control], control
    assert '<label for="say-text" class="visually-hidden">Message to the agent</label>' in html
    assert "novalidate" in elements.by_id["say-form"]
    # Device choice: labelled selects (the speaker's is shown only where setSinkId exists).
    assert '<label for="mic-device">Microphone</label>' in html
    assert '<label for="speaker-device">Speaker</label>' in html
    assert "hidden" in elements.by_id["speaker-field"]
    # The agent's state, the offer to type instead, and the note under the text box.
    assert elements.by_id["agent-state"]["data-state"] == ""
    assert "hidden" in elements.by_id["text-only"] and "Continue with text only" in html
    assert elements.by_id["say-note"]["aria-live"] == "polite"


def test_history_detail_has_a_place_for_the_median_latency(client: FlaskClient) -> None:
    _, elements = page(client, f"/history/{uuid.uuid4()}")
    assert "hidden" in elements.by_id["latency-p50"]


def test_history_detail_has_download_links_shown_once_the_transcript_loads(client: FlaskClient) -> None:
    html, elements = page(client, f"/history/{uuid.uuid4()}")
    assert "hidden" in elements.by_id["detail-downloads"]
    for link in ("download-json", "download-vtt"):
        # history.js sets the href (the API's export URL) once the transcript is there.
        assert "download" in elements.by_id[link] and "href" not in elements.by_id[link]
    assert "Download JSON" in html and "Download captions (WebVTT)" in html


def test_the_empty_history_message_is_written_once(client: FlaskClient) -> None:
    # The status line (history.js) says it; the empty box under it explains, without repeating.
    html, _ = page(client, "/history")
    assert "No conversations yet" not in html
    assert (STATIC / "history.js").read_text().count("No conversations yet.") == 1


def test_chat_page_loads_its_modules_and_maps_livekit_to_the_vendor_route(client: FlaskClient) -> None:
    html, elements = page(client, "/chat")
    import_map = re.search(r'<script type="importmap" nonce="[^"]+">(.*?)</script>', html, re.S)
    assert import_map is not None
    assert '"livekit-client": "/vendor/livekit-client.esm.mjs"' in import_map.group(1)
    assert {"type": "module", "src": "/static/chat.js"} in elements.scripts
    assert not [s for s in elements.scripts if s.get("src") and s.get("type") != "module"]


def test_chat_inputs_carry_the_servers_name_rule(client: FlaskClient) -> None:
    _, elements = page(client, "/chat")
    for field in ("room", "identity"):
        attributes = elements.by_id[field]
        assert attributes["pattern"] == html_pattern(rules.NAME_PATTERN)
        assert attributes["maxlength"] == str(rules.NAME_MAX_LENGTH)
        assert attributes["aria-describedby"] == "name-rule"
        assert "required" in attributes
    assert elements.text_of["name-rule-text"] == rules.NAME_RULE_TEXT


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"[A-Za-z0-9_.-]{1,128}", r"[A-Za-z0-9_.\-]{1,128}"),
        (r"[-a-z]", r"[\-a-z]"),
        (r"[a\-z]", r"[a\-z]"),  # already escaped: unchanged
        (r"a-b[0-9]", r"a-b[0-9]"),  # ranges and dashes outside a class: unchanged
    ],
)
def test_html_pattern_escapes_a_literal_dash_in_a_class(pattern: str, expected: str) -> None:
    assert html_pattern(pattern) == expected


@pytest.mark.parametrize("name", ["room-1", "a", "A.b_c-9", "x" * 128, "x" * 129, "team room", "ü", "a/b", "", "-"])
def test_the_rendered_pattern_accepts_what_the_api_accepts(name: str) -> None:
    rendered = html_pattern(rules.NAME_PATTERN)
    assert bool(re.fullmatch(rendered, name)) == bool(re.fullmatch(rules.NAME_PATTERN, name))


def test_the_browser_code_repeats_no_rule_of_the_server() -> None:
    for script in STATIC.glob("*.js"):
        source = script.read_text()
        assert "A-Za-z0-9" not in source, f"{script.name} repeats the name rule"
        assert "/ws/transcript" not in source, f"{script.name} rebuilds the WebSocket path"
        assert "REQUIREMENTS" not in source and "DESIGN.md" not in source


def test_history_pages_load_their_module(client: FlaskClient) -> None:
    for path in ("/history", f"/history/{uuid.uuid4()}"):
        _, elements = page(client, path)
        assert {"type": "module", "src": "/static/history.js"} in elements.scripts


def test_history_detail_checks_the_id(client: FlaskClient) -> None:
    session_id = uuid.uuid4()
    response = client.get(f"/history/{session_id}")
    assert response.status_code == 200
    assert f'data-session-id="{session_id}"' in response.get_data(as_text=True)
    assert client.get("/history/not-a-uuid").status_code == 404


def test_vendor_serves_only_the_livekit_module_as_javascript(client: FlaskClient) -> None:
    response = client.get("/vendor/livekit-client.esm.mjs")
    assert response.status_code == 200 and b"export class Room" in response.data
    assert response.mimetype == "text/javascript"
    response.close()
    assert client.get("/vendor/package.json").status_code == 404
    assert client.get("/vendor/livekit-client.umd.js").status_code == 404


def test_page_modules_are_served_as_javascript(client: FlaskClient) -> None:
    for script in sorted(STATIC.glob("*.js")):
        response = client.get(f"/static/{script.name}")
        assert response.status_code == 200, script.name
        assert response.mimetype == "text/javascript", script.name
        response.close()


def test_same_origin_backend_is_an_empty_url() -> None:
    app = create_app({"TESTING": True, "BACKEND_URL": ""})
    assert 'data-backend-url=""' in app.test_client().get("/chat").get_data(as_text=True)
    assert app.test_client().get("/healthz").get_json() == {"status": "ok"}


# ---- security headers (ui/security.py) -----------------------------------------------------


def directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


@pytest.mark.parametrize(
    "path", ["/", "/chat", "/history", f"/history/{UNKNOWN_ID}", "/static/chat.js", "/static/style.css",
             "/vendor/livekit-client.esm.mjs", "/healthz", "/no-such-page"],
)
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    response.close()
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Permissions-Policy"] == "microphone=(self), camera=(), geolocation=()"
    csp = directives(response)
    # No other site frames the pages (one did, asking for the microphone); nothing but the
    # pages' own scripts and styles runs; no plugins, no <base>, forms only to the pages.
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert [s for s in csp["script-src"] if not s.startswith("'nonce-")] == ["'self'"]
    assert not any("unsafe" in source for values in csp.values() for source in values)
    # The backend (http and WebSocket), and LiveKit, whose URL the page learns from /token.
    assert {"'self'", "http://backend.test:8000", "ws://backend.test:8000", "wss:", "https:"} <= set(csp["connect-src"])


def test_the_import_map_runs_by_a_nonce_new_on_every_request(client: FlaskClient) -> None:
    nonces = []
    for _ in range(2):
        response = client.get("/chat")
        html = response.get_data(as_text=True)
        (nonce,) = re.findall(r'<script type="importmap" nonce="([^"]+)">', html)
        assert f"'nonce-{nonce}'" in directives(response)["script-src"]
        nonces.append(nonce)
    assert nonces[0] != nonces[1] and len(nonces[0]) >= 16


def test_no_template_needs_inline_styles_or_scripts_beyond_the_import_map() -> None:
    """What keeps the policy strict: no style attribute, no inline script but the nonced one."""
    for template in (STATIC.parent / "templates").glob("*.html"):
        source = template.read_text()
        assert "style=" not in source, template.name
        assert not re.search(r"\son[a-z]+=", source), f"{template.name} has an inline event handler"
        for script in re.findall(r"<script[^>]*>", source):
            assert "src=" in script or "nonce=" in script, (template.name, script)
    for script in STATIC.glob("*.js"):
        source = script.read_text()
        assert 'setAttribute("style"' not in source, script.name  # element.style is the CSSOM: allowed


def test_a_same_origin_backend_is_allowed_by_self() -> None:
    app = create_app({"TESTING": True, "BACKEND_URL": ""})
    connect = directives(app.test_client().get("/chat"))["connect-src"]
    assert connect == ["'self'", "http:", "https:", "ws:", "wss:"]


def test_chat_page_has_a_hidden_panel_for_the_checks_before_start(client: FlaskClient) -> None:
    """preflight.js fills it with each problem and its fix, and shows it only then."""
    _, elements = page(client, "/chat")
    panel = elements.by_id["preflight"]
    assert "hidden" in panel and panel["aria-live"] == "polite" and panel["aria-label"] == "Before you start"
    assert "preflight-list" in elements.by_id
    assert "disabled" not in elements.by_id["start"]  # only a browser that cannot call disables it
