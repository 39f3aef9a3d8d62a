"""The page's pure browser code (no DOM), run in Node: how a reply's latency is written, and
which device the page uses when the device list changes. Node is a setup requirement (it
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
