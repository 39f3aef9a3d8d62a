"""Firefox for the browser tests: Debian's firefox-esr driven by Selenium through geckodriver
(both from devtools.setup), headless, its microphone a PulseAudio source of the tests' own
(tests/e2e/pulse.py), and the chat page's common steps as support.py has them for Chromium.

Why Selenium: Playwright 1.65 cannot drive Firefox ESR 153. Its BiDi context setup calls
``emulation.setMediaFeaturesOverride``, a command ESR 153 does not know, so no page opens.
The tests could move to Playwright when a Playwright release drives ESR; until then WebDriver
classic (geckodriver 0.37) does, with one limit: it adds no init scripts, so the audio probe
below is run after the page loads and before Start (the agent's <audio> and the microphone
stream appear only after Start).

The probe taps the microphone and the agent's audio in the page, as page_audio.PROBE does
in Chromium, and keeps the same record (window.__pageAudio: level edges on one AudioContext
clock, the agent's samples), so page_audio.Heard and page_audio.spans read it. It uses a
ScriptProcessorNode, not an AudioWorklet: a worklet module must come from a URL, the pages'
Content-Security-Policy allows scripts from 'self' only, and Firefox gives WebDriver no way
to bypass it (Chromium's tests use Page.setBypassCSP). It also keeps the microphone's
samples (after Firefox's voice processing), and can override the page's echoCancellation
constraint: test_firefox.py says why one test does.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import httpx
import numpy as np
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.firefox.service import Service

from devtools import setup
from devtools.stack import Stack
from tests.e2e import page_audio
from tests.e2e.pulse import PulseAudio
from tests.e2e.support import STOP_TIMEOUT_MS, VISITOR_COOKIE, Api, wait_until

START_TIMEOUT = 30.0
STOP_TIMEOUT = STOP_TIMEOUT_MS / 1000

# The microphone without a prompt, the real device (PulseAudio) rather than Firefox's fake
# one, the agent's audio and the probe's AudioContext without a click, and host candidates
# with their addresses (the LiveKit dev server is on this machine) rather than mDNS names.
PREFS: dict[str, Any] = {
    "media.navigator.permission.disabled": True,
    "media.navigator.streams.fake": False,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "media.autoplay.block-webaudio": False,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    # The page's console in geckodriver's log (artifacts/e2e/logs/firefox/).
    "devtools.console.stdout.content": True,
}


def launch(pulse: PulseAudio, log_path: Path) -> webdriver.Firefox:
    """A headless Firefox with a fresh profile, whose sound server is `pulse`."""
    options = webdriver.FirefoxOptions()
    options.binary_location = str(setup.firefox())
    options.add_argument("-headless")
    for name, value in PREFS.items():
        options.set_preference(name, value)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    service = Service(executable_path=str(setup.geckodriver()), log_output=str(log_path), env=pulse.env())
    driver = webdriver.Firefox(options=options, service=service)
    driver.set_script_timeout(30)
    return driver


# ---- the chat page ----------------------------------------------------------------------
def open_chat(driver: webdriver.Firefox, stack: Stack, room: str | None = None, identity: str | None = None) -> None:
    query = urlencode({k: v for k, v in (("room", room), ("identity", identity)) if v})
    driver.get(f"{stack.ui_url}/chat" + (f"?{query}" if query else ""))
    wait_until(lambda: driver.execute_script("return !!window.voiceAgent"), 10, "the chat page's script")


def state(driver: webdriver.Firefox) -> str:
    return str(driver.find_element(By.ID, "status").get_attribute("data-state"))


def press_start(driver: webdriver.Firefox, backend_url: str) -> tuple[str, float]:
    """Click Start, wait until the page is live; return its session id and the seconds it
    took. The page's visitor is remembered (Api.made), so the test's teardown can end the
    session if it must."""
    start = driver.find_element(By.ID, "start")
    wait_until(start.is_enabled, 10, "Start to be enabled")  # the page's checks may hold it a moment
    started = time.monotonic()
    start.click()
    wait_until(lambda: state(driver) in ("live", "error"), START_TIMEOUT, "the page to go live")
    seconds = time.monotonic() - started
    assert state(driver) == "live", (driver.find_element(By.ID, "status").text, error_text(driver))
    api_for(driver, backend_url)
    return str(driver.execute_script("return window.voiceAgent.sessionId")), seconds


def press_stop(driver: webdriver.Firefox) -> float:
    """Click Stop, wait until the page is idle; return the seconds it took."""
    started = time.monotonic()
    driver.find_element(By.ID, "stop").click()
    wait_until(lambda: state(driver) == "idle", STOP_TIMEOUT, "the page to be idle")
    return time.monotonic() - started


def error_text(driver: webdriver.Firefox) -> str:
    panel = driver.find_element(By.ID, "error")
    return "" if panel.get_attribute("hidden") is not None else panel.text


def final_lines(driver: webdriver.Firefox, role: str) -> list[str]:
    """The final lines of `role` ("user" or "agent") the transcript shows, in order."""
    return [str(text) for text in driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)",
        f"#transcript .line.{role} .text",
    )]


def messages(driver: webdriver.Firefox) -> list[dict[str, Any]]:
    """What the transcript socket delivered to the page."""
    return list(driver.execute_script("return window.voiceAgent.messages"))


def send_typed(driver: webdriver.Firefox, text: str) -> None:
    """Type `text` in the message box and press Send."""
    box = driver.find_element(By.ID, "say-text")
    box.send_keys(text)
    driver.find_element(By.ID, "send").click()
    wait_until(lambda: text in driver.execute_script("return window.voiceAgent.sentTexts"), 10, "the line to be sent")


def api_for(driver: webdriver.Firefox, backend_url: str) -> Api:
    """The page's visitor at the API: its cookie, which Firefox holds for the API's host (the
    page's too: cookies are per host, not per port)."""
    cookie = driver.get_cookie(VISITOR_COOKIE)
    assert cookie, "the page has no visitor cookie yet: it has not called the API"
    cookies = httpx.Cookies()
    cookies.set(VISITOR_COOKIE, cookie["value"], domain=urlparse(backend_url).hostname or "", path="/")
    return Api(backend_url, cookies)


def save_screenshot(driver: webdriver.Firefox, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        driver.save_screenshot(str(path))
    except WebDriverException as error:  # the test closed its last tab, or the browser is gone
        print(f"no screenshot of the failure: {error.msg}")


# ---- what the page hears ----------------------------------------------------------------
PROBE = page_audio.fill("""
((audioOverride) => {
  if (window.__pageAudio) return;
  const state = window.__pageAudio = {
    edges: [], chunks: [], micChunks: [], rate: 0, agentFrom: null, micFrom: null, errors: [], micSettings: null };
  let ctx = null;
  const context = () => {
    if (!ctx) { ctx = state.ctx = new AudioContext(); state.rate = ctx.sampleRate; ctx.resume(); }
    return ctx;
  };
  const BLOCK = 128;
  const tap = (stream, src, thr, kept) => {
    try {
      const c = context();
      const node = c.createScriptProcessor(256, 1, 1);
      let loud = false;
      node.onaudioprocess = (e) => {
        const ch = e.inputBuffer.getChannelData(0);
        const t0 = e.playbackTime;
        for (let b = 0; b < ch.length; b += BLOCK) {
          let s = 0; for (let i = b; i < b + BLOCK; i++) s += ch[i] * ch[i];
          const now = Math.sqrt(s / BLOCK) > thr;
          if (now !== loud) { loud = now; state.edges.push({ src, t: t0 + b / c.sampleRate, loud }); }
        }
        if (kept) {
          const pcm = new Int16Array(ch.length);
          for (let i = 0; i < ch.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, ch[i] * 32768));
          kept.push({ t0, pcm });
        }
      };
      c.createMediaStreamSource(stream).connect(node);
      const sink = c.createGain(); sink.gain.value = 0; node.connect(sink).connect(c.destination);
      state[src + 'From'] = c.currentTime;
    } catch (e) { state.errors.push(String(e)); }
  };
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    if (audioOverride && constraints.audio) {
      const asked = constraints.audio === true ? {} : constraints.audio;
      constraints = { ...constraints, audio: { ...asked, ...audioOverride } };
    }
    const stream = await original(constraints);
    const [track] = stream.getAudioTracks();
    if (track) {
      state.micSettings = track.getSettings();
      tap(stream, 'mic', MIC_THRESHOLD, state.micChunks);
    }
    return stream;
  };
  const tapped = new WeakSet();
  setInterval(() => {  // srcObject is a property, not an attribute: poll the <audio> elements
    for (const audio of document.querySelectorAll('audio')) {
      const stream = audio.srcObject;
      if (stream && !tapped.has(stream) && stream.getAudioTracks().length) {
        tapped.add(stream);
        tap(stream, 'agent', AGENT_THRESHOLD, state.chunks);
      }
    }
  }, 50);
  state.now = () => ctx ? ctx.currentTime : 0;
  context();  // now, not when the first stream comes: a new context takes a while (~1 s) to run
  PCM_OF_CHUNKS
  state.agentPcm = () => state.pcm(state.chunks);
  state.micPcm = () => state.pcm(state.micChunks);
})(arguments[0]);
""")

# Resolves (the async script's callback) once the page shows the agent's final line `shown`
# or (`live`) its live line (each word as it is said) starting with `shown`, letters
# compared, and the agent's audio has then been quiet for `quiet` seconds.
_SPEECH_ENDED = """
const [shown, live, quiet, done] = arguments;
const letters = (t) => t.toLowerCase().replace(/[^a-z0-9]/g, '');
const finals = '#transcript .line.agent .text';
const lines = live ? finals + ', #transcript .line.agent-live .text' : finals;
const check = () => {
  const a = window.__pageAudio, edges = a.edges.filter(e => e.src === 'agent');
  const said = [...document.querySelectorAll(lines)]
    .some(e => live ? letters(e.textContent).startsWith(letters(shown)) : e.textContent === shown);
  const last = edges[edges.length - 1];
  if (said && last && !last.loud && a.now() - last.t >= quiet) done([last.t, a.now()]);
  else setTimeout(check, 5);
};
check();
"""


def install_probe(driver: webdriver.Firefox, *, echo_cancellation: bool | None = None) -> None:
    """Tap the microphone and the agent's audio once they appear: run before pressing Start.
    Returns once the probe's AudioContext runs (its clock moves), so nothing is missed.

    `echo_cancellation`: None keeps what the page asks getUserMedia for (livekit-client asks
    for echo cancellation, noise suppression and gain control); a bool overrides that one."""
    override = None if echo_cancellation is None else {"echoCancellation": echo_cancellation}
    driver.execute_script(PROBE, override)
    wait_until(lambda: driver.execute_script("return window.__pageAudio.ctx.state") == "running", 10,
               "the probe's AudioContext to run")


def wait_for_agent_to_finish(
    driver: webdriver.Firefox, text: str, *, quiet: float = 0.02, last_sentence: bool = False
) -> tuple[float, float]:
    """Wait until the agent has said `text` and its audio has ended; return when it ended and
    when that was seen, on the probe's clock. Waits in the page (one round trip), so the
    caller can act within a few tens of milliseconds of the end.

    By default, once `text` is the agent's final line on the page (it comes as the audio ends,
    or a little after). With `last_sentence`, once its last sentence has begun on the page's
    live line: the end is then seen even when the transcript socket lags behind the audio
    (under load, by up to 0.6 s here), but `quiet` must outlast a pause between two words
    (Piper's are at most 0.07 s at -40 dBFS) not to take one for the end."""
    shown = text
    if last_sentence:
        *before, last = re.split(r"(?<=[.!?])\s+", text.strip())
        shown = " ".join([*before, last.split()[0]])
    ended, seen = driver.execute_async_script(_SPEECH_ENDED, shown, last_sentence, quiet)
    return float(ended), float(seen)


def probe_now(driver: webdriver.Firefox) -> float:
    return float(driver.execute_script("return window.__pageAudio.now()"))


def microphone_settings(driver: webdriver.Firefox) -> dict[str, Any]:
    """The settings of the page's microphone track (echoCancellation, noiseSuppression...)."""
    return dict(driver.execute_script("return window.__pageAudio.micSettings") or {})


def microphone(driver: webdriver.Firefox) -> tuple[np.ndarray, int]:
    """What the page's microphone stream carried (after Firefox's voice processing), and its rate."""
    record = driver.execute_script("const a = window.__pageAudio; return { rate: a.rate, pcm: a.micPcm() };")
    raw = base64.b64decode(record["pcm"]["b64"]) if record["pcm"]["b64"] else b""
    return np.frombuffer(raw, dtype=np.int16), int(record["rate"] or 48000)


def heard(driver: webdriver.Firefox, *, mic_gap: float = 0.7, agent_gap: float = 0.6) -> page_audio.Heard:
    """Everything the probe collected so far, as page_audio.heard reads Chromium's."""
    record = driver.execute_script(
        "const a = window.__pageAudio; return { rate: a.rate, edges: a.edges, errors: a.errors, pcm: a.agentPcm() };"
    )
    assert not record["errors"], record["errors"]
    raw = base64.b64decode(record["pcm"]["b64"]) if record["pcm"]["b64"] else b""
    edges = record["edges"]
    return page_audio.Heard(
        rate=int(record["rate"] or 48000),
        edges=edges,
        agent=np.frombuffer(raw, dtype=np.int16),
        agent_t0=record["pcm"]["t0"] or 0.0,
        mic_spans=page_audio.spans(edges, "mic", mic_gap),
        agent_spans=page_audio.spans(edges, "agent", agent_gap),
    )
