// A kernel's websocket, legacy JSON framing (text frames; the server sends binary frames only for
// messages with buffers, which this UI does not use beyond reading the JSON part).
//
// State: `status` is the kernel's execution_state as last reported (starting, idle, busy,
// restarting, dead) or "disconnected" while the socket is down. A dropped socket reconnects by
// itself with the same session_id, with growing delays; the server replays what was missed. If the
// kernel no longer exists, the status becomes "dead" and reconnecting stops.
//
// Requests are matched to their replies and outputs by msg_id: execute(code, callbacks) calls
// callbacks.iopub(msg) for each iopub message of the request, callbacks.input(msg) for an
// input_request, and callbacks.reply(msg) for the execute_reply.

import { channelsUrl, kernels } from "../api.js";

const PROTOCOL_VERSION = "5.3";
const RETRY_DELAYS_MS = [250, 1000, 2000, 4000, 8000];

function uuid() {
  return crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(16).slice(2) + Date.now().toString(16);
}

/** The JSON part of a legacy binary frame: uint32 BE count n, n uint32 BE offsets, JSON, buffers. */
function decodeBinary(buffer) {
  const view = new DataView(buffer);
  const count = view.getUint32(0);
  const start = view.getUint32(4);
  const end = count > 1 ? view.getUint32(8) : buffer.byteLength;
  return JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, start, end - start)));
}

export class Kernel extends EventTarget {
  constructor(id, sessionId = uuid()) {
    super();
    this.id = id;
    this.sessionId = sessionId;
    this.status = "starting"; // until the websocket is open
    this.heard = false; // whether a status message arrived since it opened
    this.info = null; // the last kernel_info_reply content
    this.socket = null;
    this.closed = false;
    this.retries = 0;
    this.pending = new Map(); // msg_id -> {callbacks, replied, idle}
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: status }));
  }

  connect() {
    this.closed = false;
    const socket = new WebSocket(channelsUrl(this.id, this.sessionId));
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.retries = 0;
      this.heard = false;
      this.requestInfo();
      // the state until the kernel says more (it answers kernel_info only when its shell is free)
      kernels.get(this.id).then(
        (model) => this.heard || this.setStatus(model.execution_state),
        () => {},
      );
    });
    socket.addEventListener("message", (event) => {
      const msg = typeof event.data === "string" ? JSON.parse(event.data) : decodeBinary(event.data);
      this.handle(msg);
    });
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return; // replaced
      this.socket = null;
      if (!this.closed) this.reconnect();
    });
  }

  async reconnect() {
    this.setStatus("disconnected");
    const delay = RETRY_DELAYS_MS[Math.min(this.retries, RETRY_DELAYS_MS.length - 1)];
    this.retries += 1;
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (this.closed) return;
    if (this.retries > 1) {
      try {
        await kernels.get(this.id);
      } catch (error) {
        if (error.status === 404) {
          this.setStatus("dead");
          this.closed = true;
          return;
        }
        // the server is unreachable: keep trying
      }
    }
    if (!this.closed) this.connect();
  }

  close() {
    this.closed = true;
    this.socket?.close();
    this.socket = null;
  }

  /** Send a message; returns its msg_id. Throws when the socket is not open. */
  send(channel, msgType, content, { parent = {}, callbacks } = {}) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) throw new Error("kernel not connected");
    const header = {
      msg_id: uuid(),
      msg_type: msgType,
      username: "",
      session: this.sessionId,
      date: new Date().toISOString(),
      version: PROTOCOL_VERSION,
    };
    if (callbacks) this.pending.set(header.msg_id, { callbacks, replied: false, idle: false });
    this.socket.send(JSON.stringify({ header, parent_header: parent, metadata: {}, content, channel, buffers: [] }));
    return header.msg_id;
  }

  get connected() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  requestInfo() {
    this.send("shell", "kernel_info_request", {}, {
      callbacks: {
        reply: (msg) => {
          this.info = msg.content;
          this.dispatchEvent(new CustomEvent("info", { detail: msg.content }));
        },
      },
    });
  }

  execute(code, callbacks) {
    const content = { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: true, stop_on_error: true };
    return this.send("shell", "execute_request", content, { callbacks });
  }

  /** Answer an input_request; false when the socket is down (the kernel then waits on). */
  inputReply(value, request) {
    if (!this.connected) return false;
    this.send("stdin", "input_reply", { value }, { parent: request.header });
    return true;
  }

  /** Forget every pending request (after a restart nothing will answer them); returns their callbacks. */
  dropPending() {
    const dropped = [...this.pending.values()].map((entry) => entry.callbacks);
    this.pending.clear();
    return dropped;
  }

  handle(msg) {
    const type = msg.header?.msg_type;
    const parentId = msg.parent_header?.msg_id;
    const entry = parentId ? this.pending.get(parentId) : undefined;
    if (msg.channel === "iopub") {
      if (type === "status") {
        this.heard = true;
        this.setStatus(msg.content.execution_state);
      }
      entry?.callbacks.iopub?.(msg);
      if (entry && type === "status" && msg.content.execution_state === "idle") this.settle(parentId, entry, "idle");
    } else if (msg.channel === "stdin") {
      if (type === "input_request") entry?.callbacks.input?.(msg);
    } else if (entry) {
      entry.callbacks.reply?.(msg);
      this.settle(parentId, entry, "replied");
    }
  }

  // A request is done when its reply AND its iopub "idle" have arrived (the two come on
  // different channels, in either order, and outputs may follow the reply).
  settle(msgId, entry, what) {
    entry[what] = true;
    if (entry.idle && entry.replied) this.pending.delete(msgId);
  }
}
