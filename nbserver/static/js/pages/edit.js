// /edit/<path>: a plain text editor with save (button, Ctrl-S, autosave).

import { baseName, contents, filesUrl, pageUrl } from "../api.js";
import { config } from "../config.js";
import { $ } from "../dom.js";
import { startPage } from "../page.js";
import { Saver } from "../saving.js";

startPage(async () => {
  const path = config.path;
  const editor = $("#editor");
  const saver = new Saver(path, () => ({ type: "file", format: "text", content: editor.value }));
  document.title = baseName(path);
  $("#download").href = filesUrl(path, { download: true });
  $("#view").href = pageUrl("view", path);
  let model;
  try {
    model = await contents.get(path, { type: "file", format: "text", content: "1" });
  } catch (error) {
    if (error.status !== 400) throw error;
    $("#not-text").hidden = false; // binary: offer the viewer instead
    return;
  }
  editor.value = model.content;
  editor.disabled = false;
  saver.loaded(model);
  saver.start();
  editor.addEventListener("input", () => saver.setDirty(true));
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey) {
      event.preventDefault();
      editor.setRangeText("    ", editor.selectionStart, editor.selectionEnd, "end");
      saver.setDirty(true);
    }
  });
  $("#save").addEventListener("click", () => saver.save());
  editor.focus();
});
