// Start and stop a conversation, one state at a time:
//
//   idle ──start──▶ connecting ──▶ live ──stop──▶ stopping ──▶ idle
//                       │            │
//                       └──failure──▶ error ──start──▶ connecting …
//
// Start: GET /token → join the LiveKit room → publish the mic (not in a text-only
// conversation) → POST /session → open the transcript WebSocket at the `ws_path` the API
// returned. Stop: DELETE /session → close the
// WebSocket → leave the room. Stop while connecting cancels the attempt: each step checks
// that its attempt is still the current one, and an attempt that lost undoes what it made.
//
// The machine touches no page element: it reports through `hooks` (see the constructor).
import { UiError } from "./errors.js";
import { MediaRoom } from "./media.js";

export const State = Object.freeze({
  IDLE: "idle", CONNECTING: "connecting", LIVE: "live", STOPPING: "stopping", ERROR: "error",
});

// Which state may follow which; "connecting → connecting" moves on to the next step,
// "idle → idle" only changes what the page says, "idle → error" is a refused start.
const NEXT = {
  idle: ["connecting", "idle", "error"],
  connecting: ["connecting", "live", "stopping", "error", "idle"],
  live: ["stopping", "error", "idle"],
  stopping: ["idle"],
  error: ["connecting", "idle"],
};

class Cancelled extends Error {}

/** One attempt: its room, session, socket, and what to undo when it ends. */
class Connection {
  constructor() {
    this.media = null;
    this.socket = null;
    this.sessionId = null;
    this.closing = false;
    this.cleanups = [];
    this.textOnly = false;
    this.meterCleanup = null; // the microphone's level meter, replaced when the device changes
  }

  /** Undo `cleanup` when the connection ends (at once if it already has). */
  adopt(cleanup) {
    if (typeof cleanup !== "function") return;
    if (this.closing) cleanup();
    else this.cleanups.push(cleanup);
  }

  runCleanups() {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}

export class SessionMachine {
  /**
   * @param {object} options
   * @param {import("./api.js").Api} options.api
   * @param {object} options.hooks what the page does about each change:
   *   state(state, step, extra)  the machine moved (step says why: "token", "stopped", "ended", ...)
   *   notice(what)               "reconnecting" | "reconnected", while live
   *   error(error)               an attempt failed or a live conversation was lost
   *   session(id|null), room("connected"|"disconnected"), socket("open"|"closed")
   *   message(message)           each transcript socket message
   *   microphone(mediaStreamTrack), agentAudio({element, mediaStreamTrack}) → optional cleanup
   *                              (microphone again with the new track when the input device changes)
   *   playback(canPlay)          whether the browser lets the agent's audio play
   *   closed()                   the current connection is gone: reset what showed it
   * @param {(events: object) => Promise<MediaRoom>} [options.openMedia]
   */
  constructor({ api, hooks, openMedia = (events) => MediaRoom.open(events) }) {
    this.api = api;
    this.hooks = hooks;
    this.openMedia = openMedia;
    this.state = State.IDLE;
    this.current = null;
  }

  get canStart() {
    return !this.current && (this.state === State.IDLE || this.state === State.ERROR);
  }

  get canStop() {
    return Boolean(this.current) && (this.state === State.CONNECTING || this.state === State.LIVE);
  }

  to(state, step = state, extra = {}) {
    if (!NEXT[this.state].includes(state)) {
      console.warn(`session: no transition from ${this.state} to ${state}`);
      return false;
    }
    this.state = state;
    this.hooks.state(state, step, extra);
    return true;
  }

  /**
   * @param {object} [options]
   * @param {boolean} [options.textOnly] join without publishing a microphone (the person types)
   * @param {string} [options.microphone] the input device to use ("" for the default)
   * @param {string} [options.speaker] the output device for the agent's audio ("" for the default)
   */
  async start(room, identity, { textOnly = false, microphone = "", speaker = "" } = {}) {
    if (!this.canStart) return;
    const conn = (this.current = new Connection());
    conn.textOnly = textOnly;
    const check = () => { if (conn !== this.current || conn.closing) throw new Cancelled(); };
    this.to(State.CONNECTING, "token");
    try {
      const grant = await this.api.token(room, identity);
      check();
      this.to(State.CONNECTING, "media");
      conn.media = await this.openMedia(this.mediaEvents(conn));
      check();
      await conn.media.connect(grant.url, grant.token);
      check();
      this.hooks.room("connected");
      if (speaker) await conn.media.switchDevice("audiooutput", speaker).catch((e) => console.warn("speaker", e));
      if (!textOnly) {
        this.to(State.CONNECTING, "microphone");
        const mic = await conn.media.enableMicrophone(microphone);
        check();
        if (mic) this.meter(conn, mic);
        conn.adopt(() => this.meter(conn, null));
      }
      this.to(State.CONNECTING, "agent");
      const session = await this.api.createSession(room, identity);
      conn.sessionId = session.session_id; // kept even if cancelled meanwhile: it must be deleted
      check();
      this.hooks.session(conn.sessionId);
      conn.socket = await this.openSocket(conn, session.ws_path);
      check();
      this.hooks.playback(conn.media.canPlaybackAudio);
      this.to(State.LIVE, textOnly ? "text_only" : "live");
    } catch (error) {
      const cancelled = error instanceof Cancelled || conn !== this.current || conn.closing;
      await this.end(conn, { deleteSession: true });
      if (cancelled) return;
      this.hooks.error(error);
      this.to(State.ERROR, "failed");
    }
  }

  async stop() {
    const conn = this.current;
    if (!this.canStop) return;
    this.to(State.STOPPING);
    conn.closing = true; // a start still under way gives up at its next step
    await this.end(conn, { deleteSession: true });
    this.to(State.IDLE, "stopped");
  }

  /** Starting was refused before anything was sent (the settings are invalid). */
  refuse(error) {
    if (!this.canStart) return;
    this.hooks.error(error);
    this.to(State.ERROR, "failed");
  }

  /** The person dismissed an error (for example by choosing a new room). */
  acknowledge(step, extra = {}) {
    if (this.canStart) this.to(State.IDLE, step, extra);
  }

  /** Let the agent's audio play (the browser wants a click for it). */
  startAudio() {
    const media = this.current && this.current.media;
    if (!media) return Promise.resolve();
    return media.startAudio().then(() => this.hooks.playback(media.canPlaybackAudio));
  }

  /** The page is going away: ask the server to stop (keepalive outlives the page), leave the room. */
  leave() {
    const conn = this.current;
    if (!conn) return;
    conn.closing = true;
    this.deleteSession(conn, { keepalive: true });
    if (conn.socket) conn.socket.close(1000);
    if (conn.media) conn.media.disconnect();
    this.current = null;
  }

  /** Back from the back/forward cache: the conversation ended when the page was left. */
  returned() {
    if (this.state === State.IDLE || this.state === State.ERROR) return;
    this.hooks.closed();
    this.to(State.IDLE, "left");
  }

  /** Mute or unmute the microphone; resolves to whether it is muted (null: no microphone). */
  async setMuted(muted) {
    const media = this.current && this.current.media;
    if (!media || this.current.textOnly || this.state !== State.LIVE) return null;
    return media.setMicrophoneMuted(muted);
  }

  /** Use another input ("audioinput") or output ("audiooutput") device in the live conversation. */
  async switchDevice(kind, deviceId) {
    const conn = this.current;
    if (!conn || !conn.media || (kind === "audioinput" && conn.textOnly)) return false;
    return conn.media.switchDevice(kind, deviceId || "default");
  }

  /** Send a typed message to the agent; rejects if it could not be sent. */
  async sendText(text) {
    await this.liveMedia().sendText(text);
  }

  /** Call the agent's RPC `method` (push-to-talk) in the live conversation; resolves to its answer. */
  async callAgent(method, payload) {
    return this.liveMedia().callAgent(method, payload);
  }

  /** The live conversation's media room; throws when no conversation is live. */
  liveMedia() {
    const media = this.current && this.current.media;
    if (!media || this.state !== State.LIVE) throw new UiError("connection_lost", "Not connected.");
    return media;
  }

  // ---- one connection's parts -------------------------------------------------------------
  /** (Re)start the microphone's level meter on `track` (null: stop it). */
  meter(conn, track) {
    if (conn.meterCleanup) conn.meterCleanup();
    conn.meterCleanup = null;
    if (!track || conn.closing || conn !== this.current) return;
    const cleanup = this.hooks.microphone(track);
    conn.meterCleanup = typeof cleanup === "function" ? cleanup : null;
  }

  mediaEvents(conn) {
    const isCurrent = () => conn === this.current;
    return {
      microphone: (track) => { if (isCurrent()) this.meter(conn, track); },
      agentAudio: (audio) => {
        if (isCurrent()) conn.adopt(this.hooks.agentAudio(audio));
      },
      playback: (canPlay) => { if (isCurrent()) this.hooks.playback(canPlay); },
      reconnecting: () => { if (isCurrent() && this.state === State.LIVE) this.hooks.notice("reconnecting"); },
      reconnected: () => { if (isCurrent() && this.state === State.LIVE) this.hooks.notice("reconnected"); },
      disconnected: () => {
        if (!isCurrent()) return;
        this.hooks.room("disconnected");
        if (this.state === State.LIVE) this.lost(conn, "The media server connection dropped.");
      },
    };
  }

  openSocket(conn, wsPath) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.api.socketUrl(wsPath));
      let opened = false;
      ws.onopen = () => {
        opened = true;
        if (conn === this.current) this.hooks.socket("open");
        resolve(ws);
      };
      ws.onclose = (event) => {
        if (conn === this.current) this.hooks.socket("closed");
        if (!opened) reject(new UiError("backend_down", `The live transcript connection was refused (code ${event.code}).`));
        else this.lost(conn, "The live transcript connection to the voice service closed unexpectedly.");
      };
      ws.onmessage = (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (e) {
          console.warn("bad transcript frame", e);
          return;
        }
        this.onMessage(conn, message);
      };
    });
  }

  onMessage(conn, message) {
    if (conn !== this.current) return;
    this.hooks.message(message);
    if (message.event !== "session_ended") return;
    conn.sessionId = null; // the server ended it: nothing left to delete
    this.hooks.session(null);
    this.end(conn).then(() => {
      if (this.state === State.LIVE || this.state === State.CONNECTING) {
        this.to(State.IDLE, "ended", { reason: message.reason || "ended" });
      }
    });
  }

  lost(conn, what) {
    if (conn !== this.current || conn.closing) return;
    this.end(conn, { deleteSession: true }).then(() => {
      if (this.state !== State.LIVE) return; // stopped meanwhile
      this.hooks.error(new UiError("connection_lost", what));
      this.to(State.ERROR, "lost");
    });
  }

  /** DELETE the server session; harmless if it has already ended. */
  deleteSession(conn, options = {}) {
    const id = conn.sessionId;
    conn.sessionId = null;
    if (conn === this.current) this.hooks.session(null);
    if (!id) return Promise.resolve();
    // Errors are ignored: the server also ends the session when the browser leaves the room.
    return this.api.deleteSession(id, options).catch(() => {});
  }

  /** Close the WebSocket, undo the meters and audio, leave the room. */
  async end(conn, { deleteSession = false } = {}) {
    conn.closing = true;
    if (deleteSession) await this.deleteSession(conn);
    if (conn.socket) {
      conn.socket.close(1000);
      conn.socket = null;
    }
    conn.runCleanups();
    if (conn.media) {
      const media = conn.media;
      conn.media = null;
      await media.disconnect();
    }
    if (conn === this.current) {
      this.current = null;
      this.hooks.closed();
    }
  }
}
