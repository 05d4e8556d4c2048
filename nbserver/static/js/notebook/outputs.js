// A code cell's outputs: the nbformat output list and its rendering.
//
// Safety: nothing from an output is parsed as HTML in this document. text/html goes into an
// <iframe sandbox="allow-same-origin" srcdoc> (no scripts, no forms, no popups; the page's
// Content-Security-Policy applies to it too); the frame is same-origin only so that its height can
// follow its content. Markdown is built as DOM by markdown.js; SVG is shown as an <img>, where
// scripts never run; text, JSON and tracebacks go into text nodes (ANSI colors as spans).

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { ansiToFragment, fixCarriageReturns } from "./ansi.js";
import { renderMarkdown } from "./markdown.js";

/** The mime types shown, most preferred first. */
export const MIME_ORDER = [
  "text/html",
  "text/markdown",
  "image/svg+xml",
  "image/png",
  "image/jpeg",
  "image/gif",
  "application/json",
  "text/latex",
  "text/plain",
];

const FRAME_STYLE =
  "<style>html,body{margin:0;padding:0;background:transparent}" +
  "body{display:flow-root;padding:0 .6em;font:14px/1.45 system-ui,sans-serif;color:#1f2328;overflow-y:hidden}" +
  "table{border-collapse:collapse}th,td{padding:.25em .6em;border-bottom:1px solid #d8dee4;text-align:right}" +
  "img{max-width:100%}</style>";

/** nbformat stores multi-line strings either as a string or as a list of lines. */
export function joinText(value) {
  return Array.isArray(value) ? value.join("") : String(value ?? "");
}

function base64(value) {
  return joinText(value).replace(/\s/g, "");
}

function utf8Base64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function htmlFrame(html) {
  const frame = h("iframe", { class: "output-html", sandbox: "allow-same-origin", referrerpolicy: "no-referrer", i18nTitle: "nb.htmlOutput" });
  frame.srcdoc = `<!doctype html><html><head><meta charset="utf-8">${FRAME_STYLE}</head><body>${html}</body></html>`;
  frame.addEventListener("load", () => {
    const doc = frame.contentDocument;
    if (!doc) return;
    const fit = () => {
      frame.style.height = `${Math.ceil(doc.body.getBoundingClientRect().height)}px`;
    };
    fit();
    new ResizeObserver(fit).observe(doc.body);
  });
  return frame;
}

function imageElement(type, data, metadata) {
  const src = type === "image/svg+xml" ? `data:image/svg+xml;base64,${utf8Base64(joinText(data))}` : `data:${type};base64,${base64(data)}`;
  const meta = metadata?.[type] || {};
  return h("img", { class: "output-image", src, alt: "", width: meta.width, height: meta.height });
}

function textBlock(cls, text) {
  const pre = h("pre", { class: cls });
  pre.append(ansiToFragment(fixCarriageReturns(text)));
  return pre;
}

/** The element showing one mime bundle (display_data, execute_result). */
export function renderMimeBundle(data, metadata, options) {
  const type = MIME_ORDER.find((mime) => mime in data);
  if (!type) return h("pre", { class: "output-text muted" }, t("nb.unsupportedOutput", { types: Object.keys(data).join(", ") }));
  const value = data[type];
  switch (type) {
    case "text/html":
      return htmlFrame(joinText(value));
    case "text/markdown":
      return h("div", { class: "output-markdown markdown" }, renderMarkdown(joinText(value), options));
    case "image/svg+xml":
    case "image/png":
    case "image/jpeg":
    case "image/gif":
      return imageElement(type, value, metadata);
    case "application/json":
      return h("pre", { class: "output-json" }, JSON.stringify(value, null, 2));
    default:
      return textBlock("output-text", joinText(value));
  }
}

/** The element showing one nbformat output. */
export function renderOutput(output, options = {}) {
  switch (output.output_type) {
    case "stream":
      return textBlock(`output-stream output-${output.name === "stderr" ? "stderr" : "stdout"}`, joinText(output.text));
    case "error": {
      const traceback = (output.traceback || []).join("\n") || `${output.ename}: ${output.evalue}`;
      return textBlock("output-error", traceback);
    }
    case "display_data":
    case "execute_result":
      return renderMimeBundle(output.data || {}, output.metadata || {}, options);
    default:
      return h("pre", { class: "output-text muted" }, t("nb.unsupportedOutput", { types: output.output_type }));
  }
}

/**
 * The output area of one code cell. `outputs` is the nbformat list (what is saved); each entry may
 * carry a non-enumerable `displayId` for update_display_data.
 */
export class OutputArea {
  constructor(element, options = {}) {
    this.element = element;
    this.options = options;
    this.outputs = [];
    this.clearOnNext = false;
  }

  set(outputs) {
    this.outputs = outputs.map((o) => ({ ...o }));
    this.render();
  }

  clear(wait = false) {
    if (wait) {
      this.clearOnNext = true;
      return;
    }
    this.clearOnNext = false;
    this.outputs = [];
    this.element.replaceChildren();
  }

  add(output, displayId) {
    if (this.clearOnNext) this.clear();
    const last = this.outputs[this.outputs.length - 1];
    if (output.output_type === "stream" && last?.output_type === "stream" && last.name === output.name) {
      last.text = joinText(last.text) + joinText(output.text); // one block per stream, as Jupyter
      this.element.lastElementChild.replaceWith(this.renderOne(last));
      return;
    }
    if (displayId) Object.defineProperty(output, "displayId", { value: displayId, enumerable: false });
    this.outputs.push(output);
    this.element.append(this.renderOne(output));
  }

  /** Replace the data of the outputs showing `displayId`; returns whether any did. */
  update(displayId, data, metadata) {
    let found = false;
    this.outputs.forEach((output, i) => {
      if (output.displayId !== displayId) return;
      output.data = data;
      output.metadata = metadata;
      this.element.children[i].replaceWith(this.renderOne(output));
      found = true;
    });
    return found;
  }

  renderOne(output) {
    const body = renderOutput(output, this.options);
    const prompt =
      output.output_type === "execute_result" && output.execution_count != null
        ? h("div", { class: "prompt out-prompt" }, `[${output.execution_count}]:`)
        : h("div", { class: "prompt out-prompt" });
    return h("div", { class: "output", dataset: { outputType: output.output_type } }, prompt, h("div", { class: "output-body" }, body));
  }

  render() {
    this.element.replaceChildren(...this.outputs.map((o) => this.renderOne(o)));
  }

  /** The nbformat output for an iopub message, or null if the message is not an output. */
  static fromMessage(msg) {
    const c = msg.content;
    switch (msg.header.msg_type) {
      case "stream":
        return { output_type: "stream", name: c.name, text: c.text };
      case "display_data":
        return { output_type: "display_data", data: c.data, metadata: c.metadata || {} };
      case "execute_result":
        return { output_type: "execute_result", data: c.data, metadata: c.metadata || {}, execution_count: c.execution_count };
      case "error":
        return { output_type: "error", ename: c.ename, evalue: c.evalue, traceback: c.traceback };
      default:
        return null;
    }
  }
}
