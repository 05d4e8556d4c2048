// The New menu: one notebook entry per kernelspec (display name and logo), a text file, a folder,
// and a terminal where the server has terminals (the page configuration's services.terminals).
// A new notebook is created untitled in the current directory and opened with
// /notebooks/<path>?kernel_name=<name>, the classic notebook's flow; a new terminal is created
// with POST /api/terminals and opened at /terminals/<name>.

import { contents, kernelspecs, pageUrl, request } from "../api.js";
import { config } from "../config.js";
import { showError } from "../dialog.js";
import { $, clear, h } from "../dom.js";
import { dropdown } from "./menu.js";

function logo(spec) {
  const url = spec.resources?.["logo-64x64"] || spec.resources?.["logo-32x32"];
  return url ? h("img", { src: url, alt: "", width: "20", height: "20", class: "kernel-logo" }) : h("span", { class: "kernel-logo" });
}

export async function setupNewMenu(listing) {
  const close = dropdown($("#new-menu"));

  const create = async (body, page, query = "") => {
    close();
    try {
      const model = await contents.create(listing.directory, body);
      if (page) window.location.assign(pageUrl(page, model.path) + query);
      else await listing.refresh();
    } catch (error) {
      showError(error, "tree.createFailed");
    }
  };
  $("#new-file").addEventListener("click", () => create({ type: "file", ext: ".txt" }, "edit"));
  $("#new-folder").addEventListener("click", () => create({ type: "directory" }, null));
  if (config.services?.terminals) {
    for (const element of document.querySelectorAll(".new-terminal")) element.hidden = false;
    $("#new-terminal").addEventListener("click", async () => {
      close();
      try {
        const terminal = await request("POST", "api/terminals");
        window.location.assign(pageUrl("terminals", terminal.name));
      } catch (error) {
        showError(error, "tree.createFailed");
      }
    });
  }

  const { default: defaultName, kernelspecs: specs } = await kernelspecs.list();
  const names = Object.keys(specs).sort((a, b) => (a === defaultName ? -1 : b === defaultName ? 1 : a.localeCompare(b)));
  clear($("#new-notebook-items")).append(
    ...names.map((name) =>
      h(
        "button",
        {
          type: "button",
          role: "menuitem",
          class: "new-notebook",
          dataset: { kernel: name },
          onclick: () => create({ type: "notebook" }, "notebooks", `?kernel_name=${encodeURIComponent(name)}`),
        },
        logo(specs[name]),
        specs[name].spec.display_name || name,
      ),
    ),
  );
}
