// File ▸ Download as: the notebook as HTML, as a script in its language, as Markdown (each from
// /nbconvert/<format>/<path>?download=true, offered only when /api/nbconvert lists the exporter),
// and as the notebook file itself (/files/<path>?download=1). A notebook with unsaved changes is
// saved first, so the download is what the page shows; a failed save downloads nothing.

import { encodePath, filesUrl, request } from "../api.js";
import { baseUrl } from "../config.js";
import { $, clear, h } from "../dom.js";
import { t } from "../i18n.js";
import { dropdown } from "../tree/menu.js";

/** The nbconvert formats offered, in menu order, with their label keys. */
export const FORMATS = [
  ["html", "nb.downloadHtml"],
  ["script", "nb.downloadScript"],
  ["markdown", "nb.downloadMarkdown"],
];

/** The URL of `path` exported to `format`, as an attachment. */
export function exportUrl(format, path) {
  return `${baseUrl}nbconvert/${encodeURIComponent(format)}/${encodePath(path)}?download=true`;
}

function scriptLanguage(metadata) {
  const info = metadata?.language_info || {};
  const name = info.name || metadata?.kernelspec?.language || "";
  const language = name ? name[0].toUpperCase() + name.slice(1) : t("nb.downloadScriptUnknown");
  return { language, ext: info.file_extension || "" };
}

function label(key, metadata) {
  if (key !== "nb.downloadScript") return t(key);
  const { language, ext } = scriptLanguage(metadata);
  return t(key, { language }) + (ext ? ` (${ext})` : "");
}

/**
 * Wire the File menu of the notebook page. `path()` is the notebook's current path, `metadata()`
 * its metadata (for the script's language), `saver` its Saver.
 */
export async function setupDownloadMenu({ path, metadata, saver }) {
  const close = dropdown($("#file-menu"));
  let exporters = {};
  try {
    exporters = (await request("GET", "api/nbconvert")) || {};
  } catch (error) {
    console.error(error); // no exporters: the notebook file is still offered
  }
  const download = async (url) => {
    close();
    if (saver.saving) await saver.saving; // an autosave in flight holds older content
    if (saver.dirty && !(await saver.save())) return;
    const link = h("a", { href: url(), download: "", hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
  };
  const render = () => {
    const items = FORMATS.filter(([format]) => format in exporters).map(([format, key]) =>
      h("button", { type: "button", role: "menuitem", class: "download-as", dataset: { format }, onclick: () => download(() => exportUrl(format, path())) }, label(key, metadata())),
    );
    items.push(
      h("button", { type: "button", role: "menuitem", class: "download-as", dataset: { format: "notebook" }, onclick: () => download(() => filesUrl(path(), { download: true })) }, t("nb.downloadNotebook")),
    );
    clear($("#download-items")).append(...items);
  };
  render();
  $("#file-button").addEventListener("click", render); // the language may have changed since
  window.addEventListener("nbserver:language", render);
}
