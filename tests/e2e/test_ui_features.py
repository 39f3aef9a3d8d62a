"""The chat page's microphone controls and its text box, in Debian Chromium against the real
stack with the openai providers on the offline server (the agent really hears words): mute (a muted
person is not heard), input and output devices (Chromium's fake devices; a device that
disappears is simulated with a `devicechange` event), and a text-only conversation when the
microphone is denied; then history's downloads of a conversation (JSON, WebVTT) and its empty
list. Each new state is saved as a screenshot under artifacts/e2e/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserType, Page, expect

from devtools.stack import Stack
from offline_openai.replies import GREETING
from tests.e2e import page_audio
from tests.e2e.conversations import launch_browser
from tests.e2e.speech import Utterance, content_words, recording, words
from tests.e2e.support import Api, open_chat, press_start, press_stop, unique, wait_until

AUDIBLE_RMS = 0.02
# Lets a test take a device away (and give it back): enumerateDevices() leaves out the ids
# in window.__hiddenDevices, and the test fires `devicechange` as the browser would.
HIDE_DEVICES = """
window.__hiddenDevices = new Set();
const listAll = navigator.mediaDevices.enumerateDevices.bind(navigator.mediaDevices);
navigator.mediaDevices.enumerateDevices = async () =>
  (await listAll()).filter((device) => !window.__hiddenDevices.has(device.deviceId));
window.__setDeviceHidden = (id, hidden) => {
  if (hidden) window.__hiddenDevices.add(id); else window.__hiddenDevices.delete(id);
  navigator.mediaDevices.dispatchEvent(new Event("devicechange"));
};
"""

# Said while muted, then said after unmuting: only the second may ever reach the agent.
MUTED_SENTENCE = Utterance("Tell me a story about a dragon.", pause_after=4.0)
HEARD_SENTENCE = Utterance("My favorite color is green.", pause_after=9.0)
MUTE_LEAD = 8.0  # seconds of silence first: time to start and mute (the greeting plays meanwhile)


def user_messages(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("window.voiceAgent.messages.filter(m => m.role === 'user' && 'text' in m)")


def test_a_muted_person_is_not_heard(
    browser_type: BrowserType, browser_type_launch_args: dict[str, Any], stack: Stack, artifacts_dir: Path
) -> None:
    mic = recording([MUTED_SENTENCE, HEARD_SENTENCE], lead=MUTE_LEAD, name="mute")
    (muted_start, muted_end), (heard_start, _) = mic.spans
    browser = launch_browser(browser_type, mic.noloop, **browser_type_launch_args)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page_audio.install(page)
        open_chat(page, stack, room=unique("mute"), identity=unique("mute"))
        mute = page.get_by_role("button", name="Mute", exact=True)
        expect(mute).to_be_disabled()
        press_start(page)
        mute.click()
        expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")
        assert page_audio.mic_seconds(page) < muted_start - 1, "muted too late: the test proves nothing"
        expect(page.get_by_role("button", name="Unmute", exact=True)).to_be_visible()
        expect(page.locator("#user-indicator")).to_have_attribute("data-mic", "muted")
        expect(page.locator("#mic-off")).to_have_text("muted")
        expect(page.locator("#transcript .line.agent .text").first).to_have_text(GREETING, timeout=30_000)

        # The muted sentence plays into the microphone: the track sends silence, the meter stays empty.
        wait_until(lambda: page_audio.mic_seconds(page) > muted_start + 0.5, 30, "the muted sentence to start")
        page.wait_for_function("() => window.voiceAgent.micRms < 0.001")
        assert page.evaluate("document.getElementById('mic-level').value") == 0
        page.screenshot(path=artifacts_dir / "chat-muted.png", full_page=True)
        wait_until(lambda: page_audio.mic_seconds(page) > muted_end + 1.0, 30, "the muted sentence to end")
        assert page_audio.mic_seconds(page) < heard_start - 1, "unmuted too late: the test proves nothing"

        page.get_by_role("button", name="Unmute", exact=True).click()
        expect(page.locator("#mute")).to_have_attribute("aria-pressed", "false")
        expect(page.locator("#user-indicator")).to_have_attribute("data-mic", "on")
        expect(page.locator("#mic-off")).to_be_hidden()
        # Unmuted, the next sentence is heard and answered: the agent was listening all along.
        expect(page.locator("#transcript .line.user .text").first).to_be_visible(timeout=45_000)
        wait_until(lambda: len(page.locator("#transcript .line.agent").all()) >= 2, 30, "the answer")
        said = [m["text"] for m in user_messages(page)]
        print(f"\nmuted: {MUTED_SENTENCE.text!r}; heard: {said!r}")
        assert {"favorite", "color", "green"} & set(words(" ".join(said)))
        # Not one word of the muted sentence, in any interim or final line.
        assert not content_words(MUTED_SENTENCE.text) & set(words(" ".join(said))), said
        page.screenshot(path=artifacts_dir / "chat-unmuted-heard.png", full_page=True)
        press_stop(page)
    finally:
        browser.close()


def options(page: Page, select: str) -> list[tuple[str, str]]:
    return page.evaluate(
        f"[...document.querySelectorAll('#{select} option')].map(o => [o.value, o.textContent])")


def test_input_and_output_devices_switch_and_fall_back(page: Page, stack: Stack, artifacts_dir: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.add_init_script(HIDE_DEVICES)
    open_chat(page, stack, room=unique("devices"))
    # Chromium's fake devices are listed before Start; the speaker choice exists (setSinkId).
    expect(page.locator("#mic-device option")).to_have_count(3)
    inputs = options(page, "mic-device")
    assert [label for _, label in inputs] == ["Fake Default Audio Input", "Fake Audio Input 1", "Fake Audio Input 2"]
    expect(page.get_by_label("Speaker")).to_be_visible()
    outputs = options(page, "speaker-device")
    assert len(outputs) == 3

    press_start(page)
    page.wait_for_function("() => window.voiceAgent.micDeviceId === 'default'")
    expect(page.locator("#transcript .line.agent .text").first).to_have_text(GREETING, timeout=30_000)

    # Another microphone: the published track is replaced, and the meter follows the new one.
    other_id = inputs[1][0]
    page.get_by_label("Microphone", exact=True).select_option(label="Fake Audio Input 1")
    page.wait_for_function(f"() => window.voiceAgent.micDeviceId === {other_id!r}")
    # Another speaker: the agent's audio element plays there.
    speaker_id = outputs[1][0]
    page.get_by_label("Speaker").select_option(speaker_id)
    page.wait_for_function(f"() => document.getElementById('agent-audio').sinkId === {speaker_id!r}")
    page.screenshot(path=artifacts_dir / "chat-devices-chosen.png", full_page=True)

    # The chosen microphone is unplugged: back to the default one, and the page says so.
    page.evaluate(f"window.__setDeviceHidden({other_id!r}, true)")
    expect(page.locator("#mic-device option")).to_have_count(2)
    expect(page.get_by_label("Microphone", exact=True)).to_have_value("default")
    page.wait_for_function("() => window.voiceAgent.micDeviceId === 'default'")
    expect(page.locator("#say-note")).to_contain_text("microphone you chose was disconnected")
    assert page.evaluate("window.voiceAgent.inputDevice") == "default"
    page.screenshot(path=artifacts_dir / "chat-device-unplugged.png", full_page=True)
    # It comes back: listed again, and the page stays on the device in use.
    page.evaluate(f"window.__setDeviceHidden({other_id!r}, false)")
    expect(page.locator("#mic-device option")).to_have_count(3)
    expect(page.get_by_label("Microphone", exact=True)).to_have_value("default")
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    press_stop(page)


def test_microphone_denied_offers_a_text_only_conversation(
    no_mic_browser: Browser, stack: Stack, artifacts_dir: Path
) -> None:
    context = no_mic_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        open_chat(page, stack, room=unique("textonly"))
        page.get_by_role("button", name="Start").click()
        expect(page.locator("#status")).to_have_attribute("data-state", "error", timeout=30_000)
        expect(page.locator("#error-title")).to_have_text("Microphone access is blocked")
        expect(page.locator("#error-hint")).to_contain_text("type to the agent instead")
        text_only = page.get_by_role("button", name="Continue with text only")
        expect(text_only).to_be_visible()
        page.screenshot(path=artifacts_dir / "chat-mic-denied-offer.png", full_page=True)

        text_only.click()
        expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=30_000)
        expect(page.locator("#status")).to_contain_text("text only")
        expect(page.get_by_role("alert")).to_be_hidden()
        # No microphone is published; the mic's button is off, the text box is ready.
        assert page.evaluate("[window.voiceAgent.textOnly, window.voiceAgent.micDeviceId]") == [True, None]
        expect(page.locator("#mic-off")).to_have_text("no microphone")
        expect(page.locator("#mute")).to_be_disabled()
        expect(page.get_by_label("Message to the agent")).to_be_enabled()
        # The agent still joins and speaks: its greeting is heard and written.
        expect(page.locator("#transcript .line.agent .text").first).to_have_text(GREETING, timeout=30_000)
        page.wait_for_function(f"() => window.voiceAgent.agentPeakRms > {AUDIBLE_RMS}", timeout=30_000)
        page.screenshot(path=artifacts_dir / "chat-text-only.png", full_page=True)
        press_stop(page)
    finally:
        context.close()


# ---- history: downloads, and the empty list ------------------------------------------------
TYPED = "Is <b>bold</b> & fine?"  # markup the captions must escape
VTT_TIMING = re.compile(r"^(\d{2,}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2,}):(\d{2}):(\d{2})\.(\d{3})$")


def vtt_cues(text: str) -> list[tuple[int, int, str]]:
    """(start ms, end ms, payload) of each cue of a WebVTT file that must start "WEBVTT"."""
    header, *blocks = text.rstrip("\n").split("\n\n")
    assert header == "WEBVTT", header
    cues = []
    for block in blocks:
        if block.startswith("NOTE"):
            continue
        _, timing, *payload = block.split("\n")
        match = VTT_TIMING.match(timing)
        assert match, timing
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, match.groups())
        start, end = ((h1 * 60 + m1) * 60 + s1) * 1000 + ms1, ((h2 * 60 + m2) * 60 + s2) * 1000 + ms2
        cues.append((start, end, "\n".join(payload)))
    return cues


def test_history_downloads_a_conversation_as_json_and_captions(
    no_mic_browser: Browser, stack: Stack, artifacts_dir: Path
) -> None:
    # Text only (the microphone denied), so that nothing spoken interrupts the typed turn.
    context = no_mic_browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        download_conversation(context.new_page(), stack, artifacts_dir)
    finally:
        context.close()


def download_conversation(page: Page, stack: Stack, artifacts_dir: Path) -> None:
    room = unique("export")
    open_chat(page, stack, room=room, identity=unique("export"))
    page.get_by_role("button", name="Start").click()
    page.get_by_role("button", name="Continue with text only").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=30_000)
    api = Api.for_page(page)
    session_id = page.evaluate("window.voiceAgent.sessionId")
    expect(page.locator("#transcript .line.agent .text").first).to_have_text(GREETING, timeout=30_000)
    expect(page.locator("#agent-state")).to_have_attribute("data-state", "listening", timeout=30_000)  # said it all
    page.get_by_label("Message to the agent").fill(TYPED)
    page.get_by_role("button", name="Send").click()
    reply = page.locator("#transcript .line.agent .text").filter(has_text="You said: is b bold b fine.")
    expect(reply).to_have_count(1, timeout=30_000)
    press_stop(page)
    code, transcript = api.get(f"/transcripts/{session_id}")
    assert code == 200
    entries = transcript["entries"]
    assert [(e["role"], e["typed"]) for e in entries] == [("agent", False), ("user", True), ("agent", False)]

    page.goto(f"{stack.ui_url}/history/{session_id}")
    expect(page.locator("#detail-status")).to_have_attribute("data-state", "ready")
    page.screenshot(path=artifacts_dir / "history-downloads.png", full_page=True)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download JSON").click()
    download = download_info.value
    assert re.fullmatch(rf"conversation-{room}-\d{{4}}-\d{{2}}-\d{{2}}-\d{{6}}\.json", download.suggested_filename)
    document = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert document["session"]["session_id"] == session_id and document["session"]["room"] == room
    assert document["latency_p50_ms"] == transcript["latency_p50_ms"]
    fields = ("seq", "role", "text", "typed", "interrupted", "latency")
    assert [{k: line[k] for k in fields} for line in document["lines"]] == [{k: e[k] for k in fields} for e in entries]
    assert [(line["role"], line["typed"]) for line in document["lines"] if line["text"] == TYPED] == [("user", True)]

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download captions (WebVTT)").click()
    download = download_info.value
    assert re.fullmatch(rf"conversation-{room}-\d{{4}}-\d{{2}}-\d{{2}}-\d{{6}}\.vtt", download.suggested_filename)
    cues = vtt_cues(Path(download.path()).read_text(encoding="utf-8"))
    assert len(cues) == len(entries)
    assert all(start < end for start, end, _ in cues)
    assert all(cue[1] <= following[0] for cue, following in zip(cues, cues[1:], strict=False))
    assert [(start, end) for start, end, _ in cues] == [
        (line["caption_start_ms"], line["caption_end_ms"]) for line in document["lines"]
    ]
    for (_, _, payload), entry in zip(cues, entries, strict=True):
        voice = "User" if entry["role"] == "user" else "Agent"
        assert re.match(rf"^<v(\.[a-z]+)* {voice}>", payload), payload
    assert cues[0][2] == f"<v Agent>{GREETING}</v>"
    assert "<v.typed User>[typed] Is &lt;b&gt;bold&lt;/b&gt; &amp; fine?</v>" in [payload for _, _, payload in cues]


def test_empty_history_says_so_once(browser: Browser, stack: Stack, artifacts_dir: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # a new visitor: no history
    try:
        page = context.new_page()
        page.goto(f"{stack.ui_url}/history")
        expect(page.locator("#history-status")).to_have_attribute("data-state", "empty")
        expect(page.get_by_text("No conversations yet.")).to_have_count(1)
        assert page.locator("main").inner_text().count("No conversations yet") == 1
        expect(page.locator("#history-empty")).to_contain_text("Conversations appear here after you talk to the agent.")
        expect(page.get_by_role("link", name="Start a conversation")).to_be_visible()
        page.screenshot(path=artifacts_dir / "history-empty-once.png", full_page=True)
    finally:
        context.close()
