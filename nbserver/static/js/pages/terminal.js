// /terminals/<name>: one terminal, drawn by the vendored xterm.js and connected to
// /terminals/websocket/<name> (terminado's protocol: ["stdin", text] and ["set_size", rows, cols]
// out; ["setup", {}], ["stdout", text] and ["disconnect", code] in). The login cookie
// authenticates the websocket, as for kernels.
//
// The server keeps a terminal's recent output and sends it after "setup" on every connection, so
// the screen is cleared on "setup" and redrawn from it: a reload, or a reconnection after the
// network dropped, shows what was there. The terminal takes the size of the window; every size
// change is sent, and the size is also kept in #terminal's data-size ("<rows>x<cols>").

import { config, baseUrl } from "../config.js";
import { $ } from "../dom.js";
import { t } from "../i18n.js";
import { startPage } from "../page.js";

const RETRY_MS = [500, 1000, 2000, 5000, 10_000];
const STATES = {
  starting: "status.starting",
  connected: "status.connected",
  disconnected: "status.disconnected",
  exited: "status.exited",
};

function websocketUrl(name) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${baseUrl}terminals/websocket/${encodeURIComponent(name)}`;
}

function showState(state) {
  const label = $("#terminal-status");
  label.dataset.state = state;
  label.dataset.i18n = STATES[state];
  label.textContent = t(STATES[state]);
}

class TerminalView {
  constructor(name, Terminal, FitAddon) {
    this.name = name;
    this.socket = null;
    this.exited = false;
    this.attempt = 0;
    this.element = $("#terminal");
    this.term = new Terminal({ fontFamily: getComputedStyle(document.body).getPropertyValue("--mono"), fontSize: 13, scrollback: 5000 });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(this.element);
    this.term.onData((data) => this.send(["stdin", data]));
    this.term.onResize(({ rows, cols }) => this.sendSize(rows, cols));
    let pending = false;
    window.addEventListener("resize", () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        this.fit.fit();
      });
    });
    this.fit.fit();
    this.sendSize(this.term.rows, this.term.cols);
    this.term.focus();
  }

  send(frame) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  sendSize(rows, cols) {
    this.element.dataset.size = `${rows}x${cols}`;
    this.send(["set_size", rows, cols]);
  }

  connect() {
    showState("starting");
    const socket = new WebSocket(websocketUrl(this.name));
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      showState("connected");
      this.sendSize(this.term.rows, this.term.cols);
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.exited) return;
      showState("disconnected");
      const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
      this.attempt += 1;
      setTimeout(() => this.connect(), delay);
    });
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // not terminado's protocol: ignored
    }
    if (!Array.isArray(frame)) return;
    const [kind, value] = frame;
    if (kind === "setup") this.term.reset(); // the recent output follows
    else if (kind === "stdout" && typeof value === "string") this.term.write(value);
    else if (kind === "disconnect") {
      this.exited = true;
      showState("exited");
    }
  }
}

startPage(async () => {
  showState("starting");
  const [{ Terminal }, { FitAddon }] = await Promise.all([import(config.xterm), import(config.xtermFit)]);
  const view = new TerminalView(config.terminal, Terminal, FitAddon);
  view.connect();
});
