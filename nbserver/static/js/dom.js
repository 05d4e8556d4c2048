// Building DOM without HTML strings. Text always becomes text nodes, so a file name, an output or
// a message can never be parsed as markup.

import { t } from "./i18n.js";

/**
 * h("button", {class: "primary", i18n: "tree.new", onclick: fn}, child, ...) -> HTMLButtonElement
 *
 * Props: `class`, `i18n` (a catalogue key: the element's text, re-translated on language change),
 * `i18nTitle` (likewise for the title attribute), `dataset` (object), `on<event>` (listener), and any
 * other attribute (set with setAttribute; `true` sets an empty attribute, null/false/undefined none).
 * Children: nodes, strings (text nodes), arrays of those; null and false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "i18n") {
      el.dataset.i18n = value;
      el.textContent = t(value);
    } else if (key === "i18nTitle") {
      el.dataset.i18nTitle = value;
      el.title = t(value);
    } else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return parent;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}
