// Uploads through the contents API. Files up to CHUNK_SIZE go in one PUT; larger ones in chunks
// (chunk 1, 2, ..., then -1 for the last), which the server assembles and shows only when the last
// one has arrived. A notebook is uploaded as a notebook (JSON) when it parses. Each upload shows
// a progress bar.

import { contents, joinPath } from "../api.js";
import { confirmDialog, showError } from "../dialog.js";
import { $, h } from "../dom.js";
import { t } from "../i18n.js";

export const CHUNK_SIZE = 1024 * 1024;

function base64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.slice(reader.result.indexOf(",") + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function asNotebook(file) {
  if (!/\.ipynb$/i.test(file.name) || file.size > 64 * CHUNK_SIZE) return null;
  try {
    return JSON.parse(await file.text());
  } catch {
    return null; // not JSON: uploaded as a plain file
  }
}

/** Upload `file` into `directory`; `progress(fraction)` is called as chunks are stored. */
export async function upload(file, directory, progress = () => {}) {
  const path = joinPath(directory, file.name);
  const notebook = await asNotebook(file);
  if (notebook) {
    await contents.save(path, { type: "notebook", format: "json", content: notebook });
  } else if (file.size <= CHUNK_SIZE) {
    await contents.save(path, { type: "file", format: "base64", content: await base64(file) });
  } else {
    const count = Math.ceil(file.size / CHUNK_SIZE);
    for (let i = 0; i < count; i++) {
      const blob = file.slice(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE);
      const chunk = i === count - 1 ? -1 : i + 1;
      await contents.save(path, { type: "file", format: "base64", content: await base64(blob), chunk });
      progress((i + 1) / count);
    }
  }
  progress(1);
}

/** Upload the files picked in the #upload-input, asking before replacing an existing file. */
export async function uploadAll(files, listing) {
  const names = listing.names();
  for (const file of files) {
    if (names.has(file.name)) {
      const replace = await confirmDialog(t("upload.replace", { name: file.name }), { okKey: "upload.replaceOk", danger: true });
      if (!replace) continue;
    }
    const bar = h("progress", { max: "1", value: "0" });
    const label = h("span", { class: "upload-percent" }, "0%");
    const row = h("div", { class: "upload", dataset: { name: file.name } }, h("span", { class: "upload-name" }, file.name), bar, label);
    $("#uploads").append(row);
    try {
      await upload(file, listing.directory, (fraction) => {
        bar.value = fraction;
        label.textContent = `${Math.round(fraction * 100)}%`;
      });
      row.classList.add("done");
      setTimeout(() => row.remove(), 1500);
    } catch (error) {
      row.classList.add("failed");
      showError(error, "upload.failed");
    }
    await listing.refresh();
  }
}
