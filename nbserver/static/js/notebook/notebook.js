// The notebook document: its cells, the selected cell, editing commands, and running cells on a
// kernel. It knows nothing about saving or sessions (see pages/notebook.js); it reports edits
// through `onchange`.

import { filesUrl, parentPath, pageUrl } from "../api.js";
import { Cell } from "./cell.js";
import { OutputArea } from "./outputs.js";

export class Notebook {
  constructor(container, path, { onchange = () => {} } = {}) {
    this.container = container;
    this.path = path;
    this.onchange = onchange;
    this.cells = [];
    this.selected = null;
    this.kernel = null;
    this.meta = { metadata: {}, nbformat: 4, nbformat_minor: 5 };
  }

  // -- document ----------------------------------------------------------------------------------

  /** Replace the content with the nbformat notebook `nb`. */
  load(nb) {
    const { cells = [], ...meta } = nb;
    // cell ids need nbformat 4.5; older notebooks are upgraded (ids are added) on the next save
    this.meta = { ...meta, nbformat: 4, nbformat_minor: Math.max(5, meta.nbformat_minor ?? 0) };
    this.cells = cells.map((model) => new Cell(model, this));
    if (this.cells.length === 0) this.cells.push(new Cell({ cell_type: "code", source: "" }, this));
    this.container.replaceChildren(...this.cells.map((cell) => this.attach(cell)));
    this.select(this.cells[0]);
    for (const cell of this.cells) cell.fit();
  }

  toJSON() {
    return { ...this.meta, cells: this.cells.map((cell) => cell.toJSON()) };
  }

  changed() {
    this.onchange();
  }

  /** Options for markdown rendering: relative links open pages, relative images come from /files. */
  markdownOptions(cell) {
    const directory = parentPath(this.path);
    return {
      attachments: cell.attachments,
      resolve: (url, image) => {
        if (url.startsWith("#")) return url;
        const [target, rest = ""] = url.split(/(?=[?#])/, 2);
        const relative = decodeURI(target).replace(/^\.\//, "");
        const joined = directory ? `${directory}/${relative}` : relative;
        if (image) return filesUrl(joined) + rest;
        return (/\.ipynb$/i.test(target) ? pageUrl("notebooks", joined) : pageUrl("view", joined)) + rest;
      },
    };
  }

  attach(cell) {
    cell.element.addEventListener("focusin", () => this.select(cell));
    cell.element.addEventListener("mousedown", () => this.select(cell));
    return cell.element;
  }

  // -- selection and editing commands ------------------------------------------------------------

  select(cell) {
    if (!cell || cell === this.selected) return;
    this.selected?.element.classList.remove("selected");
    this.selected = cell;
    cell.element.classList.add("selected");
    this.container.dispatchEvent(new CustomEvent("nbserver:select", { detail: cell }));
  }

  index(cell = this.selected) {
    return this.cells.indexOf(cell);
  }

  insert(at, type = "code", source = "") {
    const cell = new Cell({ cell_type: type, source }, this);
    const before = this.cells[at]?.element ?? null;
    this.container.insertBefore(this.attach(cell), before);
    this.cells.splice(at, 0, cell);
    if (type === "markdown") cell.showEditor();
    this.select(cell);
    cell.edit();
    this.changed();
    return cell;
  }

  insertBelow(type = "code") {
    return this.insert(this.index() + 1, type);
  }

  insertAbove(type = "code") {
    return this.insert(Math.max(0, this.index()), type);
  }

  remove(cell = this.selected) {
    const i = this.cells.indexOf(cell);
    if (i < 0) return;
    this.cells.splice(i, 1);
    cell.element.remove();
    if (this.cells.length === 0) this.insert(0);
    else this.select(this.cells[Math.min(i, this.cells.length - 1)]);
    this.changed();
  }

  move(delta, cell = this.selected) {
    const i = this.cells.indexOf(cell);
    const j = i + delta;
    if (i < 0 || j < 0 || j >= this.cells.length) return;
    this.cells.splice(i, 1);
    this.cells.splice(j, 0, cell);
    this.container.insertBefore(cell.element, this.cells[j + 1]?.element ?? null);
    cell.element.scrollIntoView({ block: "nearest" });
    this.changed();
  }

  setType(type, cell = this.selected) {
    if (!cell || cell.type === type) return;
    cell.setType(type);
    this.changed();
  }

  selectNext(delta) {
    const cell = this.cells[this.index() + delta];
    if (cell) {
      this.select(cell);
      cell.element.scrollIntoView({ block: "nearest" });
    }
    return cell;
  }

  // -- running -----------------------------------------------------------------------------------

  /** Run `cell`: render a markdown cell, execute a code cell on the kernel. */
  run(cell = this.selected) {
    if (!cell) return;
    if (cell.type === "markdown") {
      cell.render();
      return;
    }
    if (cell.type !== "code") return;
    if (!this.kernel?.connected) {
      this.container.dispatchEvent(new CustomEvent("nbserver:notconnected"));
      return;
    }
    if (!cell.source.trim()) {
      cell.outputs.clear();
      cell.executionCount = null;
      cell.updatePrompt();
      return;
    }
    cell.outputs.clear();
    cell.cancelInput();
    cell.setRunning(true);
    this.changed();
    this.kernel.execute(cell.source, {
      iopub: (msg) => this.onIOPub(cell, msg),
      input: (msg) =>
        cell.askInput(msg.content.prompt, msg.content.password, (value) => {
          if (!this.kernel.inputReply(value, msg)) this.container.dispatchEvent(new CustomEvent("nbserver:notconnected"));
        }),
      reply: (msg) => {
        if (msg.content.execution_count != null) cell.executionCount = msg.content.execution_count;
        cell.cancelInput();
        cell.setRunning(false);
        this.changed();
      },
    });
  }

  onIOPub(cell, msg) {
    const type = msg.header.msg_type;
    const c = msg.content;
    if (type === "execute_input") {
      cell.executionCount = c.execution_count;
    } else if (type === "clear_output") {
      cell.outputs.clear(c.wait);
    } else if (type === "update_display_data") {
      for (const other of this.cells) other.outputs.update(c.transient?.display_id, c.data, c.metadata || {});
    } else {
      const output = OutputArea.fromMessage(msg);
      if (output) {
        cell.outputs.add(output, c.transient?.display_id);
        this.changed();
      }
    }
  }

  runAll() {
    for (const cell of this.cells) this.run(cell);
  }

  /** After a restart or a kernel change nothing will answer the running cells. */
  stopAll() {
    for (const cell of this.cells) {
      if (cell.running) {
        cell.cancelInput();
        cell.setRunning(false);
      }
    }
  }
}
