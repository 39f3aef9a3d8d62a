"""The page's push-to-talk (ui/static/push-to-talk.js), run in Node with stand-in elements and
a stand-in agent: which calls reach the agent, in which order, for the switch, Space, the
button and Escape, and what the page shows. The module is the file the browser loads,
unchanged; the browser test (tests/e2e/test_push_to_talk.py) plays real speech through it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.voice.agent import push_to_talk as agent_side
from ui import create_app

MODULE = Path(__file__).resolve().parents[2] / "ui" / "static" / "push-to-talk.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed (./dev.sh setup needs it)")

# Stand-ins for the DOM the module touches, and an agent that answers as the real one does.
HARNESS = """
import * as m from MODULE;
class El extends EventTarget {
  constructor(tagName, attrs = {}) { super(); Object.assign(this, { tagName, attrs, dataset: {}, disabled: false,
    checked: false, textContent: "" }); }
  setAttribute(k, v) { this.attrs[k] = String(v); }
  getAttribute(k) { return k in this.attrs ? this.attrs[k] : null; }
  hasAttribute(k) { return k in this.attrs; }
  querySelector() { return null; }
  focus() { globalThis.focused = this; }
}
globalThis.document = new EventTarget();
document.hidden = false;
globalThis.window = new EventTarget();
const stored = new Map(Object.entries(STORED));
globalThis.localStorage = { getItem: (k) => stored.get(k) ?? null, setItem: (k, v) => stored.set(k, v) };
const calls = [];
const agent = { enabled: false, held: false, refuse: new Set() };
const call = async (method, payload) => {
  calls.push(payload ? `${method} ${payload}` : method);
  await new Promise((r) => setTimeout(r, 5));
  if (agent.refuse.has(method)) throw Object.assign(new Error("refused"), { code: 409 });
  if (method === "ptt.set_mode") Object.assign(agent, { enabled: JSON.parse(payload).enabled, held: false });
  if (method === "ptt.start_turn") agent.held = true;
  if (method === "ptt.end_turn" || method === "ptt.cancel_turn") agent.held = false;
  return JSON.stringify({ enabled: agent.enabled, held: agent.held });
};
const notes = [];
const group = new El("DIV"), toggle = new El("INPUT"), hold = new El("BUTTON");
const ptt = new m.PushToTalk({ group, toggle, hold, call, note: (t) => notes.push(t) });
const settle = () => new Promise((r) => setTimeout(r, 50));
const key = (type, code, { target = document, repeat = false } = {}) => {
  const event = new Event(type, { cancelable: true });
  Object.assign(event, { code, key: code === "Space" ? " " : code, repeat });
  if (target !== document) Object.defineProperty(event, "target", { value: target });
  document.dispatchEvent(event);
  return event.defaultPrevented;
};
const shown = () => ({ ptt: group.dataset.ptt, checked: toggle.checked, holdDisabled: hold.disabled,
  pressed: hold.getAttribute("aria-pressed"), label: hold.textContent });
const steps = {};
STEPS
process.stdout.write(JSON.stringify({ calls, notes, stored: Object.fromEntries(stored), steps,
  focused: globalThis.focused === hold ? "hold" : null }));
"""


def run(steps: str, stored: dict[str, str] | None = None) -> dict[str, Any]:
    script = (
        HARNESS.replace("MODULE", json.dumps(MODULE.as_uri()))
        .replace("STORED", json.dumps(stored or {}))
        .replace("STEPS", steps)
    )
    result = subprocess.run(
        [str(NODE), "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_the_chat_page_has_the_switch_off_and_a_real_button_to_hold(tmp_path: Path) -> None:
    html = create_app({"TESTING": True, "VENDOR_DIR": str(tmp_path)}).test_client().get("/chat").get_data(as_text=True)
    switch = re.search(r'<input id="ptt-toggle"[^>]*>', html)
    assert switch and 'type="checkbox"' in switch[0] and 'role="switch"' in switch[0]
    assert "checked" not in switch[0]  # hands-free by default
    assert re.search(r'<label class="ptt-switch">\s*<input id="ptt-toggle"[^>]*>\s*Push to talk</label>', html)
    hold = re.search(r'<button id="ptt-hold"[^>]*>', html)
    assert hold and 'type="button"' in hold[0] and 'aria-pressed="false"' in hold[0] and "disabled" in hold[0]
    assert 'aria-describedby="ptt-hint"' in hold[0] and 'id="ptt-hint"' in html


def test_the_page_calls_the_agents_methods() -> None:
    source = MODULE.read_text()
    for method in agent_side.METHODS:
        assert f'"{method}"' in source, method


def test_off_by_default_then_switched_on_during_the_conversation_and_space_talks() -> None:
    out = run("""
      steps.idle = shown();
      ptt.setLive(true); await settle();
      steps.liveOff = shown();
      steps.spaceWhileOff = key("keydown", "Space");
      toggle.checked = true; toggle.dispatchEvent(new Event("change")); await settle();
      steps.on = shown();
      steps.down = key("keydown", "Space");
      key("keydown", "Space", { repeat: true }); key("keydown", "Space", { repeat: true });
      steps.waiting = shown(); await settle();
      steps.talking = shown();
      steps.up = key("keyup", "Space"); await settle();
      steps.released = shown();
    """)
    steps = out["steps"]
    assert steps["idle"] == {"ptt": "off", "checked": False, "holdDisabled": True, "pressed": "false",
                             "label": "Hold to talk"}
    assert steps["liveOff"]["ptt"] == "off" and steps["spaceWhileOff"] is False  # Space is left alone
    assert steps["on"] == {"ptt": "on", "checked": True, "holdDisabled": False, "pressed": "false",
                           "label": "Hold to talk"}
    assert out["focused"] == "hold"  # Space talks from where the focus went
    assert steps["down"] is True and steps["up"] is True  # no scrolling, no click
    assert steps["waiting"]["pressed"] == "true" and steps["waiting"]["label"] == "Wait…"
    assert steps["talking"]["label"] == "Talking…"
    assert steps["released"]["pressed"] == "false" and steps["released"]["label"] == "Hold to talk"
    # Key repeats are one press; the calls go in order.
    assert out["calls"] == ['ptt.set_mode {"enabled":true}', "ptt.start_turn", "ptt.end_turn"]
    assert out["stored"] == {"voiceAgent.pushToTalk": "on"}


def test_the_choice_is_remembered_and_applied_when_the_next_conversation_goes_live() -> None:
    out = run("""
      steps.idle = shown();
      ptt.setLive(true); await settle();
      steps.live = shown();
      ptt.setLive(false);
      steps.ended = shown();
    """, stored={"voiceAgent.pushToTalk": "on"})
    steps = out["steps"]
    assert steps["idle"]["checked"] is True and steps["idle"]["holdDisabled"] is True
    assert steps["live"]["ptt"] == "on" and steps["live"]["holdDisabled"] is False
    assert steps["ended"]["holdDisabled"] is True and steps["ended"]["checked"] is True
    assert out["calls"] == ['ptt.set_mode {"enabled":true}']


def test_space_in_a_text_box_or_on_another_control_types_or_presses_it() -> None:
    out = run("""
      ptt.setLive(true); toggle.checked = true; toggle.dispatchEvent(new Event("change")); await settle();
      steps.input = key("keydown", "Space", { target: new El("INPUT") });
      steps.button = key("keydown", "Space", { target: new El("BUTTON") });
      steps.checkbox = key("keydown", "Space", { target: new El("DIV", { role: "checkbox" }) });
      steps.link = key("keydown", "Space", { target: new El("A", { href: "/history" }) });
      steps.region = key("keydown", "Space", { target: new El("DIV", { role: "region" }) });
      await settle(); key("keyup", "Space"); await settle();
    """)
    assert out["steps"] == {"input": False, "button": False, "checkbox": False, "link": False, "region": True}
    assert out["calls"] == ['ptt.set_mode {"enabled":true}', "ptt.start_turn", "ptt.end_turn"]


def test_the_button_escape_and_switching_off() -> None:
    out = run("""
      ptt.setLive(true); toggle.checked = true; toggle.dispatchEvent(new Event("change")); await settle();
      const pointer = (type) => { const e = new Event(type, { cancelable: true });
        Object.assign(e, { button: 0, pointerId: 1 }); hold.dispatchEvent(e); };
      pointer("pointerdown"); await settle(); pointer("pointerup"); pointer("pointerleave"); await settle();
      key("keydown", "Space"); await settle(); key("keydown", "Escape"); await settle();
      steps.afterEscape = shown();
      key("keyup", "Space"); await settle();
      toggle.checked = false; toggle.dispatchEvent(new Event("change")); await settle();
      steps.off = shown();
      steps.spaceWhenOff = key("keydown", "Space");
    """)
    assert out["calls"] == [
        'ptt.set_mode {"enabled":true}', "ptt.start_turn", "ptt.end_turn",  # the button, once
        "ptt.start_turn", "ptt.cancel_turn",  # Escape drops it; the key's release sends nothing more
        'ptt.set_mode {"enabled":false}',
    ]
    assert out["steps"]["afterEscape"]["pressed"] == "false"
    assert out["steps"]["off"]["ptt"] == "off" and out["steps"]["off"]["holdDisabled"] is True
    assert out["steps"]["spaceWhenOff"] is False
    assert out["stored"] == {"voiceAgent.pushToTalk": "off"}


def test_a_refused_switch_is_undone_and_said() -> None:
    out = run("""
      agent.refuse.add("ptt.set_mode");
      ptt.setLive(true); toggle.checked = true; toggle.dispatchEvent(new Event("change")); await settle();
      steps.after = shown();
      steps.space = key("keydown", "Space");
    """)
    assert out["steps"]["after"]["checked"] is False and out["steps"]["after"]["ptt"] == "off"
    assert out["steps"]["space"] is False
    assert len(out["notes"]) == 1 and re.match(r"Push to talk could not be switched on: refused", out["notes"][0])
