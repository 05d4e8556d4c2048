// /tree/<dir>: the file browser, the running sessions, kernels and terminals, and the IPython
// Parallel clusters (a tab shown where the server runs them).

import { showError } from "../dialog.js";
import { $ } from "../dom.js";
import { config } from "../config.js";
import { startPage } from "../page.js";
import { refreshClusters } from "../tree/clusters.js";
import { Listing } from "../tree/listing.js";
import { setupNewMenu } from "../tree/newmenu.js";
import { refreshRunning } from "../tree/running.js";
import { uploadAll } from "../tree/upload.js";

const RUNNING_POLL_MS = 10_000;

function setupTabs() {
  const tabs = { files: [$("#tab-files"), $("#files-panel")], running: [$("#tab-running"), $("#running-panel")] };
  const refreshers = { running: refreshRunning };
  if (config.services?.clusters) {
    tabs.clusters = [$("#tab-clusters"), $("#clusters-panel")];
    refreshers.clusters = refreshClusters;
    $("#tab-clusters").hidden = false;
  }
  let timer = null;
  const show = (name) => {
    for (const [key, [tab, panel]] of Object.entries(tabs)) {
      tab.setAttribute("aria-selected", String(key === name));
      panel.hidden = key !== name;
    }
    clearInterval(timer);
    const refresh = refreshers[name];
    if (refresh) {
      refresh().catch(showError);
      timer = setInterval(() => refresh().catch(() => {}), RUNNING_POLL_MS);
    }
  };
  for (const name of Object.keys(tabs)) tabs[name][0].addEventListener("click", () => show(name));
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
