// One notebook cell: its nbformat fields and its DOM (prompt, source editor, rendered markdown,
// outputs, input prompt). A markdown cell shows its rendering until it is edited (double click or
// Enter) and renders again when run.

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { renderMarkdown } from "./markdown.js";
import { joinText, OutputArea } from "./outputs.js";

function newId() {
  return (crypto.randomUUID ? crypto.randomUUID() : Math.random().toString(16).slice(2)).replace(/-/g, "").slice(0, 12);
}

export class Cell {
  /** `model`: an nbformat cell; `notebook`: the owner (notified of edits, asked for options). */
  constructor(model, notebook) {
    this.notebook = notebook;
    this.id = model.id || newId();
    this.type = model.cell_type === "markdown" || model.cell_type === "raw" ? model.cell_type : "code";
    this.metadata = model.metadata || {};
    this.attachments = model.attachments;
    this.executionCount = model.execution_count ?? null;
    this.running = false;
    this.build(joinText(model.source));
    this.outputs.set(this.type === "code" ? model.outputs || [] : []);
    this.updatePrompt();
    if (this.type === "markdown") this.render();
  }

  build(source) {
    this.prompt = h("div", { class: "prompt in-prompt" });
    this.editor = h("textarea", {
      class: "source",
      spellcheck: "false",
      rows: "1",
      "aria-label": t("nb.source"),
      "data-i18n-aria-label": "nb.source",
    });
    this.editor.value = source;
    this.rendered = h("div", { class: "markdown rendered", hidden: true });
    const outputElement = h("div", { class: "outputs" });
    this.stdin = h("div", { class: "stdin" });
    this.element = h(
      "div",
      { class: `cell cell-${this.type}`, tabindex: "-1", dataset: { id: this.id } },
      this.prompt,
      h("div", { class: "cell-body" }, this.editor, this.rendered, outputElement, this.stdin),
    );
    this.outputs = new OutputArea(outputElement, this.notebook.markdownOptions(this));
    this.editor.addEventListener("input", () => {
      this.fit();
      this.notebook.changed();
    });
    this.rendered.addEventListener("dblclick", () => this.edit());
  }

  get source() {
    return this.editor.value;
  }

  set source(value) {
    this.editor.value = value;
    this.fit();
  }

  /** Grow the editor with its content. */
  fit() {
    this.editor.style.height = "auto";
    this.editor.style.height = `${this.editor.scrollHeight + 2}px`;
  }

  setType(type) {
    if (type === this.type) return;
    this.element.classList.replace(`cell-${this.type}`, `cell-${type}`);
    this.type = type;
    if (type !== "code") {
      this.outputs.clear();
      this.executionCount = null;
    }
    this.updatePrompt();
    if (type === "markdown") this.edit();
    else this.showEditor();
  }

  updatePrompt() {
    if (this.type !== "code") this.prompt.textContent = "";
    else this.prompt.textContent = `[${this.running ? "*" : (this.executionCount ?? " ")}]:`;
  }

  setRunning(running) {
    this.running = running;
    this.element.classList.toggle("running", running);
    this.updatePrompt();
  }

  /** Markdown: show the rendering (an empty cell shows a hint). */
  render() {
    const source = this.source.trim();
    this.rendered.replaceChildren(
      source ? renderMarkdown(this.source, this.notebook.markdownOptions(this)) : h("p", { class: "muted", i18n: "nb.emptyMarkdown" }),
    );
    this.rendered.hidden = false;
    this.editor.hidden = true;
  }

  showEditor() {
    this.rendered.hidden = true;
    this.editor.hidden = false;
    this.fit();
  }

  edit() {
    this.showEditor();
    this.editor.focus();
  }

  /** Ask for input (stdin input_request); `reply(value)` sends the answer. */
  askInput(prompt, password, reply) {
    const field = h("input", { type: password ? "password" : "text", class: "stdin-input", "aria-label": prompt || t("nb.input") });
    const row = h("label", { class: "stdin-row" }, h("span", { class: "stdin-prompt" }, prompt), field);
    this.stdin.replaceChildren(row);
    field.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      event.stopPropagation();
      const value = field.value;
      this.stdin.replaceChildren();
      this.outputs.add({ output_type: "stream", name: "stdout", text: `${prompt}${password ? "········" : value}\n` });
      reply(value);
    });
    field.focus();
  }

  cancelInput() {
    this.stdin.replaceChildren();
  }

  /** The nbformat cell. */
  toJSON() {
    const cell = { id: this.id, cell_type: this.type, metadata: this.metadata, source: this.source };
    if (this.type === "code") {
      cell.execution_count = this.executionCount;
      cell.outputs = this.outputs.outputs;
    } else if (this.attachments) {
      cell.attachments = this.attachments;
    }
    return cell;
  }
}
