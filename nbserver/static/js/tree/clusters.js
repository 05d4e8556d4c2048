// The "Clusters" tab (where the server runs IPython Parallel: the page configuration's
// services.clusters): one row per cluster of /api/clusters, its profile, state and engine count;
// a stopped cluster has an engine-count input and Start (POST /api/clusters/<id>/start {"n"}),
// a running one Stop (POST /api/clusters/<id>/stop).

import { request } from "../api.js";
import { showError } from "../dialog.js";
import { $, clear, h } from "../dom.js";
import { t } from "../i18n.js";

export const DEFAULT_ENGINES = 2;
const STATES = { running: "running.clusterRunning", stopped: "running.clusterStopped", starting: "status.starting", stopping: "running.clusterStopping" };

const clusters = {
  list: () => request("GET", "api/clusters"),
  start: (id, n) => request("POST", `api/clusters/${encodeURIComponent(id)}/start`, { body: { n } }),
  stop: (id) => request("POST", `api/clusters/${encodeURIComponent(id)}/stop`),
};

function stateLabel(state) {
  return h("span", { class: "status cluster-state", dataset: { state }, i18n: STATES[state] });
}

function actions(cluster, row, refresh) {
  const busy = (state) => {
    row.querySelector(".cluster-state").replaceWith(stateLabel(state));
    for (const control of row.querySelectorAll("button, input")) control.disabled = true;
  };
  const act = async (state, action) => {
    busy(state);
    try {
      await action();
    } catch (error) {
      showError(error, "running.clusterFailed");
    }
    await refresh();
  };
  if (cluster.status === "running") {
    return h("button", { type: "button", class: "row-action action-stop danger-text", i18n: "running.stop", onclick: () => act("stopping", () => clusters.stop(cluster.id)) });
  }
  const count = h("input", {
    type: "number",
    class: "engine-count",
    min: "1",
    step: "1",
    value: String(DEFAULT_ENGINES),
    "aria-label": t("running.enginesOf", { profile: cluster.id }),
  });
  const start = () => {
    const n = Number(count.value);
    if (!Number.isInteger(n) || n < 1) {
      count.reportValidity();
      return;
    }
    act("starting", () => clusters.start(cluster.id, n));
  };
  return [count, h("button", { type: "button", class: "row-action action-start", i18n: "running.start", onclick: start })];
}

export async function refreshClusters() {
  const list = await clusters.list();
  const refresh = () => refreshClusters().catch(showError);
  const rows = list.map((cluster) => {
    const row = h(
      "tr",
      { dataset: { cluster: cluster.id, status: cluster.status } },
      h("td", { class: "cluster-profile", title: cluster.profile_dir }, cluster.id),
      h("td", {}, stateLabel(cluster.status)),
      h("td", { class: "cluster-engines" }, cluster.n === null || cluster.n === undefined ? "" : String(cluster.n)),
    );
    row.append(h("td", { class: "col-actions" }, actions(cluster, row, refresh)));
    return row;
  });
  clear($("#clusters tbody")).append(...rows);
  $("#no-clusters").hidden = list.length > 0;
}
