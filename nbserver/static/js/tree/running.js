// The "Running" tab: sessions, kernels and (where the server has them) terminals, each with a
// shut-down button.

import { kernels, pageUrl, request, sessions } from "../api.js";
import { config } from "../config.js";
import { confirmDialog, showError } from "../dialog.js";
import { $, clear, h } from "../dom.js";
import { formatDate, t } from "../i18n.js";

function stateLabel(state) {
  return h("span", { class: "status", dataset: { state }, i18n: `status.${state}` });
}

function shutdownButton(onclick) {
  return h("button", { type: "button", class: "row-action action-shutdown danger-text", i18n: "running.shutdown", onclick });
}

async function shutDown(message, action, refresh) {
  if (!(await confirmDialog(message, { okKey: "running.shutdown", danger: true }))) return;
  try {
    await action();
  } catch (error) {
    showError(error, "running.shutdownFailed");
  }
  await refresh();
}

const terminals = {
  list: () => (config.services?.terminals ? request("GET", "api/terminals") : Promise.resolve(null)),
  remove: (name) => request("DELETE", `api/terminals/${encodeURIComponent(name)}`),
};

function renderTerminals(terminalList, refresh) {
  $("#running-terminals").hidden = terminalList === null;
  if (terminalList === null) return;
  const rows = terminalList.map((term) =>
    h(
      "tr",
      { dataset: { terminal: term.name } },
      h("td", {}, h("a", { href: pageUrl("terminals", term.name) }, term.name)),
      h("td", { class: "col-modified", title: term.last_activity }, formatDate(term.last_activity)),
      h(
        "td",
        { class: "col-actions" },
        shutdownButton(() => shutDown(t("running.confirmShutdownTerminal", { name: term.name }), () => terminals.remove(term.name), refresh)),
      ),
    ),
  );
  clear($("#terminals tbody")).append(...rows);
  $("#no-terminals").hidden = terminalList.length > 0;
}

export async function refreshRunning() {
  const [sessionList, kernelList, terminalList] = await Promise.all([sessions.list(), kernels.list(), terminals.list()]);
  const refresh = () => refreshRunning().catch(showError);
  const sessionRows = sessionList.map((s) =>
    h(
      "tr",
      { dataset: { session: s.id } },
      h("td", {}, h("a", { href: pageUrl(s.type === "notebook" ? "notebooks" : "edit", s.path) }, s.path)),
      h("td", {}, s.kernel?.name ?? ""),
      h("td", {}, s.kernel ? stateLabel(s.kernel.execution_state) : ""),
      h("td", { class: "col-actions" }, shutdownButton(() => shutDown(t("running.confirmShutdown", { name: s.path }), () => sessions.remove(s.id), refresh))),
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
      h("td", { class: "col-actions" }, shutdownButton(() => shutDown(t("running.confirmShutdown", { name: k.name }), () => kernels.remove(k.id), refresh))),
    ),
  );
  clear($("#kernels tbody")).append(...kernelRows);
  $("#no-kernels").hidden = kernelList.length > 0;
  renderTerminals(terminalList, refresh);
}
