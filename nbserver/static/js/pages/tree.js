// /tree/<dir>: the file browser and the running sessions and kernels.

import { showError } from "../dialog.js";
import { $ } from "../dom.js";
import { config } from "../config.js";
import { startPage } from "../page.js";
import { Listing } from "../tree/listing.js";
import { setupNewMenu } from "../tree/newmenu.js";
import { refreshRunning } from "../tree/running.js";
import { uploadAll } from "../tree/upload.js";

const RUNNING_POLL_MS = 10_000;

function setupTabs() {
  const tabs = { files: [$("#tab-files"), $("#files-panel")], running: [$("#tab-running"), $("#running-panel")] };
  let timer = null;
  const show = (name) => {
    for (const [key, [tab, panel]] of Object.entries(tabs)) {
      tab.setAttribute("aria-selected", String(key === name));
      panel.hidden = key !== name;
    }
    clearInterval(timer);
    if (name === "running") {
      refreshRunning().catch(showError);
      timer = setInterval(() => refreshRunning().catch(() => {}), RUNNING_POLL_MS);
    }
  };
  $("#tab-files").addEventListener("click", () => show("files"));
  $("#tab-running").addEventListener("click", () => show("running"));
}

startPage(async () => {
  const listing = new Listing(config.path);
  setupTabs();
  $("#refresh").addEventListener("click", () => listing.refresh().catch(showError));
  const input = $("#upload-input");
  input.addEventListener("change", async () => {
    const files = [...input.files];
    input.value = "";
    await uploadAll(files, listing);
  });
  window.addEventListener("nbserver:language", () => listing.render());
  await Promise.all([listing.refresh(), setupNewMenu(listing)]);
});
