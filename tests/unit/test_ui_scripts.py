"""The page's pure browser code (no DOM), run in Node: how a reply's latency is written,
which device the page uses when the device list changes, how each way livekit-client's
Room.connect() fails is explained (with the library's real ConnectionErrors), what a browser
lacks for calls and what the checks before Start show. Node is a setup requirement (it
fetches livekit-client); the modules are the files the browser loads, unchanged."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

STATIC = Path(__file__).resolve().parents[2] / "ui" / "static"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed (./dev.sh setup needs it)")


def run_module(module: str, expression: str) -> Any:
    """Import ui/static/`module` in Node and return `expression` (JSON) evaluated with it as `m`."""
    url = (STATIC / module).as_uri()
    script = f"import * as m from {json.dumps(url)};\nprocess.stdout.write(JSON.stringify({expression}));"
    result = subprocess.run(
        [str(NODE), "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


FULL = {"total_ms": 1234, "end_of_turn_ms": 550, "stt_ms": 100, "llm_ms": 300, "tts_ms": 284}


@pytest.mark.parametrize(
    ("latency", "shown"),
    [
        (FULL, "1.23 s · turn 0.55 · stt 0.10 · llm 0.30 · tts 0.28"),
        # A typed turn: no end-of-turn wait and no speech to text.
        ({"total_ms": 800, "end_of_turn_ms": None, "stt_ms": None, "llm_ms": 305, "tts_ms": 290},
         "0.80 s · llm 0.30 · tts 0.29"),
        ({"total_ms": 0}, "0.00 s"),
        (None, ""),  # the greeting: no latency, nothing shown
        ({"total_ms": None}, ""),
        ({"total_ms": "1200"}, ""),  # not a number: not shown rather than shown wrong
    ],
)
def test_latency_is_written_in_seconds_with_its_parts(latency: Any, shown: str) -> None:
    assert run_module("latency.js", f"m.formatLatency({json.dumps(latency)})") == shown


def test_latency_has_a_description_in_words() -> None:
    described = run_module("latency.js", f"m.describeLatency({json.dumps(FULL)})")
    assert described.startswith("The agent started answering 1.23 s after your turn ended")
    assert "speech to text 0.10 s" in described and "text to speech, first audio 0.28 s" in described


DEVICES = [
    {"kind": "audioinput", "deviceId": "default", "label": "Default - USB mic"},
    {"kind": "audioinput", "deviceId": "usb", "label": "USB mic"},
    {"kind": "audioinput", "deviceId": "builtin", "label": ""},
    {"kind": "audiooutput", "deviceId": "default", "label": "Speakers"},
    {"kind": "videoinput", "deviceId": "cam", "label": "Camera"},
]


def test_device_options_are_of_one_kind_and_named_when_the_browser_hides_names() -> None:
    shown = run_module("devices.js", f"m.deviceOptions({json.dumps(DEVICES)}, 'audioinput')")
    assert shown == [
        {"id": "default", "label": "Default - USB mic"},
        {"id": "usb", "label": "USB mic"},
        {"id": "builtin", "label": "Microphone 1"},
    ]


def test_before_permission_there_is_one_choice_the_default() -> None:
    hidden = [{"kind": "audioinput", "deviceId": "", "label": ""}, {"kind": "audiooutput", "deviceId": "", "label": ""}]
    assert run_module("devices.js", f"m.deviceOptions({json.dumps(hidden)}, 'audiooutput')") == [
        {"id": "", "label": "Default speaker"}
    ]


@pytest.mark.parametrize(
    ("ids", "chosen", "expected"),
    [
        (["default", "usb"], "usb", {"id": "usb", "fellBack": False}),  # still there: kept
        (["default", "builtin"], "usb", {"id": "default", "fellBack": True}),  # unplugged: the default
        (["builtin", "other"], "usb", {"id": "builtin", "fellBack": True}),  # no "default" entry: the first
        (["default", "usb"], "", {"id": "default", "fellBack": False}),  # nothing chosen yet: no notice
        ([], "usb", {"id": "", "fellBack": True}),  # nothing left at all
    ],
)
def test_a_device_that_disappears_falls_back_to_the_default(ids: list[str], chosen: str, expected: dict) -> None:
    options = [{"id": i, "label": i} for i in ids]
    assert run_module("devices.js", f"m.keepOrFallBack({json.dumps(options)}, {json.dumps(chosen)})") == expected


# ---- why joining the LiveKit room failed (livekit-errors.js), with livekit-client's own errors --
LIVEKIT_ESM = Path(__file__).resolve().parents[2] / ".tools" / "npm" / "node_modules" / "livekit-client" / "dist" / (
    "livekit-client.esm.mjs"
)
needs_livekit = pytest.mark.skipif(not LIVEKIT_ESM.exists(), reason="livekit-client is not installed (./dev.sh setup)")
LIVEKIT_URL = "ws://media.test:7880"


def run_with_livekit(expression: str) -> Any:
    """`expression` evaluated in Node with livekit-client as `lk`, livekit-errors.js as `m` and
    errors.js as `errors`; `shown(error)` is what the page's error panel shows for a thrown error."""
    imports = {"lk": LIVEKIT_ESM, "m": STATIC / "livekit-errors.js", "errors": STATIC / "errors.js"}
    script = "".join(f"import * as {name} from {json.dumps(path.as_uri())};\n" for name, path in imports.items())
    script += (
        f"const shown = (thrown) => {{ const e = m.connectError(thrown, {json.dumps(LIVEKIT_URL)});"
        " return {kind: e.kind, ...errors.describe(e)}; };\n"
        f"process.stdout.write(JSON.stringify({expression}));"
    )
    result = subprocess.run(
        [str(NODE), "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@needs_livekit
def test_the_reason_table_is_livekit_clients() -> None:
    """livekit-errors.js names the reasons by number: the numbers are the library's."""
    names = run_with_livekit("Object.keys(lk.ConnectionErrorReason).filter((k) => isNaN(Number(k)))")
    assert run_with_livekit("m.REASONS") == names
    assert run_with_livekit("m.REASONS.every((name, i) => lk.ConnectionErrorReason[name] === i)") is True


@needs_livekit
@pytest.mark.parametrize(
    ("thrown", "kind", "title", "message"),
    [
        ("lk.ConnectionError.notAllowed('invalid token: token is expired', 401)", "livekit_refused",
         "The media server refused the room pass", "The media server did not accept this page’s room pass."),
        ("lk.ConnectionError.serverUnreachable('could not establish signal connection: Failed to fetch')",
         "livekit_down", "Can’t reach the media server", f"No connection to the LiveKit server at {LIVEKIT_URL}."),
        ("lk.ConnectionError.websocket('Encountered websocket error during connection establishment')",
         "livekit_down", "Can’t reach the media server",
         f"The LiveKit server at {LIVEKIT_URL} answers, but its WebSocket connection failed."),
        ("lk.ConnectionError.timeout('room connection has timed out (signal)')", "livekit_timeout",
         "The media server did not answer in time", f"The LiveKit server at {LIVEKIT_URL} did not answer in time."),
        ("lk.ConnectionError.internal('could not establish pc connection')", "livekit_failed",
         "The call could not be set up", "The media server answered, but the call’s connection could not be set up."),
        ("lk.ConnectionError.leaveRequest('Received leave request while trying to (re)connect', 2)", "livekit_left",
         "The media server closed the connection",
         "The media server told this page to leave while it was joining the room."),
        ("lk.ConnectionError.cancelled('Client initiated disconnect')", "connection_lost",
         "The connection was lost", "The connection to the media server was cancelled before it was ready."),
        ("lk.ConnectionError.serviceNotFound('v1 RTC path not found. Consider upgrading your LiveKit server version',"
         " 'v0-rtc')", "livekit_incompatible", "The media server does not match this page",
         f"The server at {LIVEKIT_URL} does not offer the connection this page’s LiveKit client uses."),
    ],
)
def test_each_connection_error_reason_is_explained_accurately(thrown: str, kind: str, title: str, message: str) -> None:
    shown = run_with_livekit(f"[{thrown}.message, {thrown}.status ?? null, shown({thrown})]")
    library_message, status, panel = shown
    assert (panel["kind"], panel["title"], panel["message"]) == (kind, title, message)
    # The library's own words, and the HTTP status it got, in the small print; no stack trace.
    suffix = f" (HTTP {status})" if status else ""
    assert panel["detail"] == f"LiveKit client: {library_message}{suffix}"
    assert " at " not in panel["detail"].replace(LIVEKIT_URL, "") and ".mjs" not in panel["detail"]
    assert not panel["offerTextOnly"] and not panel["offerNewRoom"]


@needs_livekit
def test_the_reason_counts_not_the_name_the_client_left_behind() -> None:
    """livekit-client's Room rethrows a signal failure as serverUnreachable with the inner
    error's reason copied over, but not its reasonName: a refused token is still refused."""
    kind = run_with_livekit(
        "(() => { const e = lk.ConnectionError.serverUnreachable("
        "'could not establish signal connection: invalid token');"
        " e.reason = lk.ConnectionErrorReason.NotAllowed; e.status = 401; return [e.reasonName, shown(e).kind]; })()"
    )
    assert kind == ["ServerUnreachable", "livekit_refused"]


@needs_livekit
def test_livekits_unsupported_browser_error_is_not_called_an_unreachable_server() -> None:
    thrown = ("new Error(\"LiveKit doesn't seem to be supported on this browser. Try to update your browser and make"
              " sure no browser extensions are disabling webRTC.\")")
    panel = run_with_livekit(f"shown({thrown})")
    assert panel["kind"] == "browser_unsupported"
    assert panel["title"] == "This browser cannot make calls"
    assert "WebRTC" in panel["message"]
    assert "Chrome or Edge" in panel["hint"] and "Firefox" in panel["hint"] and "Safari" in panel["hint"]
    assert panel["detail"].startswith("LiveKit client: LiveKit doesn't seem to be supported")
    assert not panel["offerTextOnly"]  # typing uses the same connection


@needs_livekit
def test_an_unknown_failure_is_not_called_an_unreachable_server() -> None:
    panel = run_with_livekit("shown(new TypeError('e.foo is not a function'))")
    assert (panel["kind"], panel["title"]) == ("livekit_failed", "The call could not be set up")
    assert panel["detail"] == "LiveKit client: e.foo is not a function"


# ---- what the browser can do (browser-support.js) and the checks before Start (preflight.js) --
# Fake global objects: a browser with everything, and Debian's WebKitGTK 2.50 (no WebRTC).
EVERYTHING = (
    "{RTCPeerConnection: class {}, WebSocket: class {}, AudioContext: class {}, AudioWorkletNode: class {},"
    " isSecureContext: true, navigator: {mediaDevices: {getUserMedia() {}}}}"
)
WEBKITGTK = (
    "{WebSocket: class {}, AudioContext: class {}, AudioWorkletNode: class {},"
    " isSecureContext: true, navigator: {mediaDevices: {getUserMedia() {}}}}"
)


def support(globals_js: str, livekit: str = "null") -> Any:
    return run_module("browser-support.js", f"(() => {{ const s = m.browserSupport({globals_js}, {livekit});"
                      " return {...s, message: s.canCall ? null : m.unsupportedMessage(s)}; })()")


def test_a_browser_with_everything_can_call() -> None:
    assert support(EVERYTHING, "true") == {"canCall": True, "missing": [], "insecure": False, "message": None}


def test_without_webrtc_a_browser_cannot_call_and_is_told_what_it_lacks() -> None:
    found = support(WEBKITGTK, "false")
    assert found["canCall"] is False
    assert found["missing"] == [{"key": "webrtc", "name": "WebRTC (RTCPeerConnection)", "required": True}]
    assert found["message"] == "This browser has no WebRTC (RTCPeerConnection), which calls need."


def test_every_missing_feature_is_named_individually() -> None:
    found = support("{isSecureContext: true, navigator: {}}")
    assert [f["key"] for f in found["missing"]] == ["webrtc", "websocket", "microphone", "webaudio", "audioworklet"]
    assert found["message"] == (
        "This browser has no WebRTC (RTCPeerConnection) and WebSocket, which calls need. It also lacks microphone"
        " capture (navigator.mediaDevices.getUserMedia), Web Audio (AudioContext) and AudioWorklet."
    )


def test_livekits_own_verdict_counts_when_rtcpeerconnection_exists() -> None:
    found = support(EVERYTHING, "false")
    assert found["canCall"] is False and [f["key"] for f in found["missing"]] == ["webrtc-tracks"]


def test_no_microphone_on_an_insecure_address_is_not_the_browsers_fault() -> None:
    found = support("{RTCPeerConnection: class {}, WebSocket: class {}, AudioContext: class {},"
                    " AudioWorkletNode: class {}, isSecureContext: false, navigator: {}}")
    assert found == {"canCall": True, "missing": [], "insecure": True, "message": None}


def preflight_problems(globals_js: str, microphone: str = "prompt", autoplay: str = "unknown") -> Any:
    """The problems preflight.js shows, as [check, severity, title, fix]."""
    script = STATIC / "browser-support.js"
    expression = f"(await import({json.dumps(script.as_uri())})).browserSupport({globals_js}, null)"
    return run_module(
        "preflight.js",
        f"m.problems({{support: {expression}, microphone: {json.dumps(microphone)}, autoplay: {json.dumps(autoplay)}}})"
        ".map((p) => [p.check, p.severity, p.title, p.fix])",
    )


@pytest.mark.parametrize("microphone", ["granted", "prompt", "unknown"])
def test_preflight_shows_nothing_when_all_is_well(microphone: str) -> None:
    assert preflight_problems(EVERYTHING, microphone, "allowed") == []
    assert preflight_problems(EVERYTHING, microphone, "unknown") == []  # Chrome: the button covers it


def test_preflight_says_the_microphone_is_blocked_and_how_to_allow_it() -> None:
    ((check, severity, title, fix),) = preflight_problems(EVERYTHING, "denied")
    assert (check, severity, title) == ("microphone", "warn", "Microphone blocked")
    assert "address bar" in fix and "reload" in fix and "type to the agent" in fix


@pytest.mark.parametrize("autoplay", ["disallowed", "allowed-muted"])
def test_preflight_warns_that_sound_may_wait_for_a_click(autoplay: str) -> None:
    assert preflight_problems(EVERYTHING, "granted", autoplay) == [
        ["autoplay", "info", "Sound may be blocked until you click",
         "The page will ask: press “Click to hear the agent” when it appears."]
    ]


def test_preflight_in_a_browser_without_webrtc_says_only_that_and_what_to_use() -> None:
    ((check, severity, title, fix),) = preflight_problems(WEBKITGTK, "denied", "disallowed")
    assert (check, severity, title) == ("browser", "block", "This browser cannot make calls")
    assert fix.startswith("This browser has no WebRTC (RTCPeerConnection), which calls need. Use the latest Chrome")


def test_preflight_on_an_insecure_address_says_to_use_https() -> None:
    ((check, severity, title, fix),) = preflight_problems(
        "{RTCPeerConnection: class {}, WebSocket: class {}, AudioContext: class {}, isSecureContext: false,"
        " navigator: {}}"
    )
    assert (check, severity, title) == ("microphone", "warn", "No microphone on this address")
    assert "HTTPS or localhost" in fix
