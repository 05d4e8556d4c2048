// The directory listing of /tree: breadcrumbs, one row per entry, and the row actions
// (rename, duplicate, download, delete).

import { baseName, contents, filesUrl, joinPath, pageUrl } from "../api.js";
import { confirmDialog, promptDialog, showError } from "../dialog.js";
import { $, clear, h } from "../dom.js";
import { formatDate, formatSize, t } from "../i18n.js";

// files the browser shows better than a text editor does
const VIEWABLE = /\.(png|jpe?g|gif|webp|bmp|ico|svg|pdf|html?|mp4|webm|ogv|mp3|wav|ogg|oga|flac)$/i;

/** Where a listing entry opens. */
export function entryUrl(model) {
  if (model.type === "directory") return pageUrl("tree", model.path);
  if (model.type === "notebook") return pageUrl("notebooks", model.path);
  return pageUrl(VIEWABLE.test(model.name) ? "view" : "edit", model.path);
}

function icon(model) {
  const kind = model.type === "directory" ? "folder" : model.type === "notebook" ? "notebook" : "file";
  return h("span", { class: `entry-icon entry-${kind}`, "aria-hidden": "true" });
}

function byKindThenName(a, b) {
  const rank = (m) => (m.type === "directory" ? 0 : 1);
  return rank(a) - rank(b) || a.name.localeCompare(b.name, undefined, { numeric: true });
}

export class Listing {
  constructor(directory) {
    this.directory = directory;
    this.entries = [];
    this.body = $("#listing tbody");
  }

  names() {
    return new Set(this.entries.map((m) => m.name));
  }

  async refresh() {
    const model = await contents.get(this.directory, { content: "1", type: "directory" });
    this.entries = model.content.slice().sort(byKindThenName);
    this.render();
  }

  render() {
    renderBreadcrumbs(this.directory);
    clear(this.body).append(...this.entries.map((model) => this.row(model)));
    $("#empty").hidden = this.entries.length > 0;
  }

  row(model) {
    const isFile = model.type !== "directory";
    const action = (key, handler, extra = {}) =>
      h("button", { type: "button", class: `row-action action-${key}`, i18n: `tree.${key}`, onclick: handler, ...extra });
    return h(
      "tr",
      { dataset: { path: model.path, type: model.type } },
      h("td", { class: "col-name" }, icon(model), h("a", { href: entryUrl(model), class: "entry-name" }, model.name)),
      h("td", { class: "col-modified", title: model.last_modified }, formatDate(model.last_modified)),
      h("td", { class: "col-size" }, isFile ? formatSize(model.size) : ""),
      h(
        "td",
        { class: "col-actions" },
        action("rename", () => this.rename(model)),
        isFile && action("duplicate", () => this.duplicate(model)),
        isFile &&
          h("a", { class: "row-action action-download", href: filesUrl(model.path, { download: true }), download: model.name, i18n: "tree.download" }),
        action("delete", () => this.remove(model), { class: "row-action action-delete danger-text" }),
      ),
    );
  }

  async rename(model) {
    const name = await promptDialog(t("tree.renamePrompt", { name: model.name }), model.name, { okKey: "tree.rename" });
    if (!name || name === model.name) return;
    if (name.includes("/")) {
      showError(new Error(t("tree.badName")), "tree.renameFailed");
      return;
    }
    try {
      await contents.rename(model.path, joinPath(this.directory, name));
    } catch (error) {
      showError(error, "tree.renameFailed");
    }
    await this.refresh();
  }

  async duplicate(model) {
    try {
      await contents.create(this.directory, { copy_from: model.path });
    } catch (error) {
      showError(error, "tree.duplicateFailed");
    }
    await this.refresh();
  }

  async remove(model) {
    const key = model.type === "directory" ? "tree.confirmDeleteFolder" : "tree.confirmDelete";
    if (!(await confirmDialog(t(key, { name: model.name }), { okKey: "tree.delete", danger: true }))) return;
    try {
      await contents.remove(model.path);
    } catch (error) {
      showError(error, "tree.deleteFailed");
    }
    await this.refresh();
  }
}

function renderBreadcrumbs(directory) {
  const nav = clear($("#breadcrumbs"));
  const parts = directory ? directory.split("/") : [];
  const root = { i18nTitle: "tree.root", "aria-label": t("tree.root"), "data-i18n-aria-label": "tree.root" };
  nav.append(h("a", { href: pageUrl("tree"), class: "crumb crumb-root", ...root }));
  parts.forEach((part, i) => {
    const path = parts.slice(0, i + 1).join("/");
    nav.append(h("span", { class: "crumb-sep", "aria-hidden": "true" }, "/"));
    const last = i === parts.length - 1;
    nav.append(h("a", { href: pageUrl("tree", path), class: "crumb", "aria-current": last ? "page" : null }, part));
  });
  document.title = directory ? baseName(directory) : t("tree.title");
}
