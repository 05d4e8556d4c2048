// Modal dialogs (<dialog>) and toasts, with translated buttons. Each dialog resolves a promise:
// confirmDialog -> true/false, promptDialog -> the entered string or null.

import { h } from "./dom.js";
import { t } from "./i18n.js";

function open(body, { okKey, danger = false, input = null }) {
  return new Promise((resolve) => {
    const form = h(
      "form",
      { method: "dialog" },
      body,
      input,
      h(
        "div",
        { class: "dialog-buttons" },
        h("button", { type: "submit", value: "cancel", class: "dialog-cancel", formnovalidate: true, i18n: "dialog.cancel" }),
        h("button", { type: "submit", value: "ok", class: danger ? "danger dialog-ok" : "primary dialog-ok", i18n: okKey }),
      ),
    );
    const dialog = h("dialog", { class: "modal" }, form);
    dialog.addEventListener("close", () => {
      dialog.remove();
      const ok = dialog.returnValue === "ok";
      resolve(input ? (ok ? input.value : null) : ok);
    });
    document.body.append(dialog);
    dialog.showModal();
    if (input) {
      input.focus();
      const dot = input.value.lastIndexOf(".");
      input.setSelectionRange(0, dot > 0 ? dot : input.value.length); // the name, not its extension
    } else {
      dialog.querySelector(".dialog-ok").focus();
    }
  });
}

export function confirmDialog(message, { okKey = "dialog.ok", danger = false } = {}) {
  return open(h("p", {}, message), { okKey, danger });
}

export function promptDialog(label, value = "", { okKey = "dialog.ok" } = {}) {
  const input = h("input", { type: "text", class: "dialog-input", required: true, "aria-label": label });
  input.value = value;
  return open(h("p", {}, label), { okKey, input });
}

/** A message that disappears by itself; `kind` is "info" or "error". */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts") || document.body;
  const item = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 3000);
}

/** Report a failed action: "<what failed>: <the server's message>". */
export function showError(error, key = "error.generic") {
  console.error(error);
  toast(t(key, { message: error?.message || String(error) }), "error");
}
