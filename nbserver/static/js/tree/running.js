// The "Running" tab: sessions and kernels, each with a shut-down button.

import { kernels, pageUrl, sessions } from "../api.js";
import { confirmDialog, showError } from "../dialog.js";
import { $, clear, h } from "../dom.js";
import { t } from "../i18n.js";

function stateLabel(state) {
  return h("span", { class: "status", dataset: { state }, i18n: `status.${state}` });
}

function shutdownButton(onclick) {
  return h("button", { type: "button", class: "row-action action-shutdown danger-text", i18n: "running.shutdown", onclick });
}

async function shutDown(what, action, refresh) {
  if (!(await confirmDialog(t("running.confirmShutdown", { name: what }), { okKey: "running.shutdown", danger: true }))) return;
  try {
    await action();
  } catch (error) {
    showError(error, "running.shutdownFailed");
  }
  await refresh();
}

export async function refreshRunning() {
  const [sessionList, kernelList] = await Promise.all([sessions.list(), kernels.list()]);
  const refresh = () => refreshRunning().catch(showError);
  const sessionRows = sessionList.map((s) =>
    h(
      "tr",
      { dataset: { session: s.id } },
      h("td", {}, h("a", { href: pageUrl(s.type === "notebook" ? "notebooks" : "edit", s.path) }, s.path)),
      h("td", {}, s.kernel?.name ?? ""),
      h("td", {}, s.kernel ? stateLabel(s.kernel.execution_state) : ""),
      h("td", { class: "col-actions" }, shutdownButton(() => shutDown(s.path, () => sessions.remove(s.id), refresh))),
    ),
  );
  clear($("#sessions tbody")).append(...sessionRows);
  $("#no-sessions").hidden = sessionList.length > 0;
  const kernelRows = kernelList.map((k) =>
    h(
      "tr",
      { dataset: { kernel: k.id } },
      h("td", { class: "mono", title: k.id }, k.id.slice(0, 8)),
      h("td", {}, k.name),
      h("td", {}, stateLabel(k.execution_state)),
      h("td", {}, String(k.connections ?? 0)),
      h("td", { class: "col-actions" }, shutdownButton(() => shutDown(k.name, () => kernels.remove(k.id), refresh))),
    ),
  );
  clear($("#kernels tbody")).append(...kernelRows);
  $("#no-kernels").hidden = kernelList.length > 0;
}
