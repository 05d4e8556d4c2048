// The New menu: one notebook entry per kernelspec (display name and logo), a text file, a folder.
// A new notebook is created untitled in the current directory and opened with
// /notebooks/<path>?kernel_name=<name>, the classic notebook's flow.

import { contents, kernelspecs, pageUrl } from "../api.js";
import { showError } from "../dialog.js";
import { $, clear, h } from "../dom.js";

function logo(spec) {
  const url = spec.resources?.["logo-64x64"] || spec.resources?.["logo-32x32"];
  return url ? h("img", { src: url, alt: "", width: "20", height: "20", class: "kernel-logo" }) : h("span", { class: "kernel-logo" });
}

export async function setupNewMenu(listing) {
  const menu = $("#new-menu");
  const button = $("#new-button");
  const items = menu.querySelector(".menu-items");
  const close = () => {
    items.hidden = true;
    button.setAttribute("aria-expanded", "false");
  };
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    items.hidden = !items.hidden;
    button.setAttribute("aria-expanded", String(!items.hidden));
  });
  document.addEventListener("click", (event) => {
    if (!menu.contains(event.target)) close();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });

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
