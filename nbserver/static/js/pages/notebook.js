// /notebooks/<path>: loads the notebook, opens (or joins) its session, connects the kernel, and
// wires the toolbar, the keyboard, saving, checkpoints, renaming, changing the kernel and
// File ▸ Download as.

import { baseName, contents, kernels, kernelspecs, pageUrl, parentPath, sessions } from "../api.js";
import { config } from "../config.js";
import { confirmDialog, promptDialog, showError, toast } from "../dialog.js";
import { $, clear, h } from "../dom.js";
import { formatDate, t } from "../i18n.js";
import { setupDownloadMenu } from "../notebook/download.js";
import { Kernel } from "../notebook/kernel.js";
import { Notebook } from "../notebook/notebook.js";
import { startPage } from "../page.js";
import { Saver } from "../saving.js";

let path = config.path;
let session = null;
let specs = {};
const notebook = new Notebook($("#cells"), path, { onchange: () => saver.setDirty(true) });
const saver = new Saver(path, () => ({ type: "notebook", format: "json", content: notebook.toJSON() }), { checkpoint: true });

// -- kernel --------------------------------------------------------------------------------------

function showStatus(state) {
  const label = $("#kernel-status");
  label.dataset.state = state;
  label.dataset.i18n = `status.${state}`;
  label.textContent = t(`status.${state}`);
}

function connect(kernelModel) {
  notebook.kernel?.close();
  const kernel = new Kernel(kernelModel.id, notebook.kernel?.sessionId);
  kernel.addEventListener("status", (event) => {
    showStatus(event.detail);
    if (event.detail === "dead") notebook.stopAll(); // nothing will answer the running cells
  });
  kernel.addEventListener("info", (event) => {
    const info = event.detail.language_info;
    if (info) notebook.meta.metadata.language_info = info;
  });
  notebook.kernel = kernel;
  $("#kernel-status").dataset.kernel = kernel.id;
  showStatus(kernel.status);
  kernel.connect();
  $("#kernel-select").value = kernelModel.name;
  const spec = specs[kernelModel.name]?.spec;
  if (spec) {
    notebook.meta.metadata.kernelspec = { name: kernelModel.name, display_name: spec.display_name, language: spec.language };
  }
}

async function startSession(kernelName) {
  const model = { path, name: baseName(path), type: "notebook" };
  if (kernelName) model.kernel = { name: kernelName };
  session = await sessions.create(model);
  connect(session.kernel);
}

async function changeKernel(name) {
  if (!session || session.kernel.name === name) return;
  try {
    session = await sessions.update(session.id, { kernel: { name } });
    notebook.stopAll();
    connect(session.kernel);
    saver.setDirty(true);
  } catch (error) {
    $("#kernel-select").value = session.kernel.name;
    showError(error, "nb.kernelChangeFailed");
  }
}

async function interrupt() {
  if (session) await kernels.interrupt(session.kernel.id).catch((e) => showError(e, "nb.interruptFailed"));
}

async function restart() {
  if (!session) return;
  if (!(await confirmDialog(t("nb.confirmRestart"), { okKey: "nb.restart", danger: true }))) return;
  showStatus("restarting");
  try {
    try {
      await kernels.restart(session.kernel.id);
    } catch (error) {
      if (error.status !== 404) throw error;
      await startSession(session.kernel.name); // the kernel is gone (shut down elsewhere): a new one
      toast(t("nb.restarted"));
      return;
    }
    notebook.kernel.dropPending();
    notebook.stopAll();
    if (notebook.kernel.connected) notebook.kernel.requestInfo();
    toast(t("nb.restarted"));
  } catch (error) {
    showError(error, "nb.restartFailed");
  }
}

// -- document ------------------------------------------------------------------------------------

function showTitle() {
  $("#title").textContent = baseName(path);
  document.title = baseName(path);
}

async function load() {
  const model = await contents.get(path, { type: "notebook", content: "1" });
  notebook.load(model.content);
  saver.loaded(model);
  return model;
}

async function rename() {
  const name = await promptDialog(t("nb.renamePrompt"), baseName(path), { okKey: "tree.rename" });
  if (!name || name === baseName(path)) return;
  const newName = /\.ipynb$/i.test(name) ? name : `${name}.ipynb`;
  if (newName.includes("/")) {
    showError(new Error(t("tree.badName")), "tree.renameFailed");
    return;
  }
  const newPath = parentPath(path) ? `${parentPath(path)}/${newName}` : newName;
  try {
    const model = await contents.rename(path, newPath);
    path = model.path;
    saver.path = path;
    saver.lastModified = model.last_modified;
    notebook.path = path;
    if (session) session = await sessions.update(session.id, { path, name: newName });
    history.replaceState(null, "", pageUrl("notebooks", path));
    showTitle();
  } catch (error) {
    showError(error, "tree.renameFailed");
  }
}

async function revert() {
  const list = await contents.checkpoints(path);
  if (list.length === 0) {
    toast(t("nb.noCheckpoint"));
    return;
  }
  const latest = list.reduce((a, b) => (a.last_modified > b.last_modified ? a : b));
  const message = t("nb.confirmRevert", { time: formatDate(latest.last_modified) });
  if (!(await confirmDialog(message, { okKey: "nb.revert", danger: true }))) return;
  await contents.restoreCheckpoint(path, latest.id);
  await load();
}

// -- toolbar and keyboard ------------------------------------------------------------------------

function runAndAdvance() {
  const cell = notebook.selected;
  notebook.run(cell);
  const next = notebook.selectNext(1) || notebook.insertBelow();
  if (next.type === "code" || !next.editor.hidden) next.edit();
}

function bindToolbar() {
  const on = (id, handler) =>
    $(id).addEventListener("click", () => {
      Promise.resolve(handler()).catch((error) => showError(error));
    });
  on("#save", () => saver.save());
  on("#revert", revert);
  on("#add-cell", () => notebook.insertBelow());
  on("#delete-cell", () => notebook.remove());
  on("#move-up", () => notebook.move(-1));
  on("#move-down", () => notebook.move(1));
  on("#run", runAndAdvance);
  on("#run-all", () => notebook.runAll());
  on("#interrupt", interrupt);
  on("#restart", restart);
  on("#title", rename);
  $("#cell-type").addEventListener("change", (event) => notebook.setType(event.target.value));
  $("#kernel-select").addEventListener("change", (event) => changeKernel(event.target.value));
  $("#cells").addEventListener("nbserver:select", (event) => {
    $("#cell-type").value = event.detail.type === "markdown" ? "markdown" : "code";
  });
  $("#cells").addEventListener("nbserver:notconnected", () => toast(t("nb.notConnected"), "error"));
}

function bindKeyboard() {
  $("#cells").addEventListener("keydown", (event) => {
    const inEditor = event.target.classList?.contains("source");
    if (event.key === "Enter" && event.shiftKey && !event.ctrlKey && !event.altKey) {
      event.preventDefault();
      runAndAdvance();
    } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      notebook.run();
    } else if (event.key === "Enter" && event.altKey) {
      event.preventDefault();
      notebook.run();
      notebook.insertBelow();
    } else if (event.key === "Tab" && inEditor && !event.shiftKey) {
      event.preventDefault();
      const editor = event.target;
      editor.setRangeText("    ", editor.selectionStart, editor.selectionEnd, "end");
      editor.dispatchEvent(new Event("input"));
    } else if (event.key === "Escape" && inEditor) {
      event.target.blur();
      notebook.selected?.element.focus();
    }
  });
  // command mode: a cell is selected and no editor has the focus
  document.addEventListener("keydown", (event) => {
    if (event.target !== document.body && !event.target.classList?.contains("cell")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const commands = {
      ArrowUp: () => notebook.selectNext(-1),
      k: () => notebook.selectNext(-1),
      ArrowDown: () => notebook.selectNext(1),
      j: () => notebook.selectNext(1),
      a: () => notebook.insertAbove(),
      b: () => notebook.insertBelow(),
      m: () => notebook.setType("markdown"),
      y: () => notebook.setType("code"),
      Enter: () => notebook.selected?.edit(),
    };
    const command = commands[event.key];
    if (command) {
      event.preventDefault();
      command();
    }
  });
}

async function fillKernelMenu() {
  const list = await kernelspecs.list();
  specs = list.kernelspecs;
  const select = clear($("#kernel-select"));
  for (const name of Object.keys(specs).sort()) {
    select.append(h("option", { value: name }, specs[name].spec.display_name || name));
  }
  return list.default;
}

startPage(async () => {
  bindToolbar();
  bindKeyboard();
  showTitle();
  const downloads = setupDownloadMenu({ path: () => path, metadata: () => notebook.meta.metadata, saver });
  const [defaultKernel, model] = await Promise.all([fillKernelMenu(), load(), downloads]);
  saver.start();
  const wanted = config.kernelName || model.content.metadata?.kernelspec?.name;
  const kernelName = wanted && wanted in specs ? wanted : defaultKernel;
  if (config.kernelName) history.replaceState(null, "", pageUrl("notebooks", path)); // a reload joins the session
  await startSession(kernelName);
  notebook.selected?.edit();
});
