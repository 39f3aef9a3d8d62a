// The chat page's "Who is speaking" group: an indicator for the person and one for the agent,
// each saying whether they are speaking; beside the agent, what it is doing; beside the
// person, the microphone's level and whether it is muted or absent (a text-only conversation).

// What the agent is doing, in the indicator beside its name ("idle" and unknown states: nothing).
const AGENT_STATES = { initializing: "joining…", listening: "listening", thinking: "thinking", speaking: "speaking" };

export class Speakers {
  /**
   * @param {object} el
   * @param {HTMLElement} el.user the person's indicator (data-speaking, data-mic)
   * @param {HTMLElement} el.agent the agent's indicator (data-speaking, data-agent-state)
   * @param {HTMLElement} el.agentState what the agent is doing (data-state)
   * @param {HTMLElement} el.micOff "muted" or "no microphone", hidden while the microphone is on
   * @param {HTMLMeterElement} el.level the microphone's level
   */
  constructor(el) {
    this.el = el;
  }

  /** Whether `role` ("user" | "agent") is speaking now. */
  speaking(role, speaking) {
    const indicator = role === "agent" ? this.el.agent : this.el.user;
    indicator.dataset.speaking = String(speaking);
    indicator.querySelector(".speaker-state").textContent = speaking ? "speaking" : "not speaking";
  }

  /** What the agent is doing ("listening", "thinking", "speaking"...; null: nothing shown). */
  agentState(state) {
    const known = Object.hasOwn(AGENT_STATES, state || "");
    this.el.agentState.dataset.state = known ? state : "";
    this.el.agentState.textContent = known ? AGENT_STATES[state] : "";
    this.el.agent.dataset.agentState = known ? state : "";
  }

  /** The microphone: "on", "muted", or "off" (none: text only); the level shows 0 unless on. */
  microphone(mic) {
    this.el.user.dataset.mic = mic;
    this.el.micOff.hidden = mic === "on";
    this.el.micOff.textContent = mic === "off" ? "no microphone" : "muted";
    if (mic !== "on") this.el.level.value = 0;
  }

  /** Nobody speaking, no level: no conversation. */
  reset() {
    this.speaking("user", false);
    this.speaking("agent", false);
    this.level(0);
  }

  /** The microphone's level, 0..1. */
  level(value) {
    this.el.level.value = value;
  }
}
