// Interface languages. Every string the UI shows comes from a catalogue, static/i18n/<code>.json
// (English is the fallback for a key a catalogue lacks). The server renders English text next to
// data-i18n keys, so a page reads well before this module runs; translate() then applies the chosen
// language to [data-i18n] (text), [data-i18n-title], [data-i18n-placeholder], [data-i18n-aria-label].
//
// The language is the one stored in localStorage by the switcher, else the first of the browser's
// languages that has a catalogue, else English.

import { config } from "./config.js";

const STORAGE_KEY = "nbserver.language";
const catalogues = new Map();
let current = "en";

const ATTRIBUTES = [
  ["i18nTitle", "title"],
  ["i18nPlaceholder", "placeholder"],
  ["i18nAriaLabel", "aria-label"],
];

export function language() {
  return current;
}

/** The BCP 47 tag of the current language, for Intl and <html lang>. */
export function locale() {
  return current === "zh" ? "zh-CN" : current;
}

function storedLanguage() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled
  }
}

export function preferredLanguage() {
  const available = config.languages || {};
  const stored = storedLanguage();
  if (stored && stored in available) return stored;
  for (const tag of navigator.languages || [navigator.language]) {
    const code = String(tag).toLowerCase().split("-")[0];
    if (code in available) return code;
  }
  return "en";
}

async function load(code) {
  if (!catalogues.has(code)) {
    const url = (config.languages || {})[code];
    if (!url) throw new Error(`no catalogue for language ${code}`);
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`cannot load ${url}: ${response.status}`);
    catalogues.set(code, await response.json());
  }
  return catalogues.get(code);
}

/** The message for `key` in the current language, with {name} placeholders filled from `params`. */
export function t(key, params) {
  const message = catalogues.get(current)?.[key] ?? catalogues.get("en")?.[key] ?? key;
  if (!params) return message;
  return message.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
}

/** Apply the current language to every element under `root` that names a catalogue key. */
export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    const params = el.dataset.i18nParams ? JSON.parse(el.dataset.i18nParams) : undefined;
    el.textContent = t(el.dataset.i18n, params);
  }
  for (const [data, attribute] of ATTRIBUTES) {
    const selector = "[data-" + data.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()) + "]";
    for (const el of root.querySelectorAll(selector)) el.setAttribute(attribute, t(el.dataset[data]));
  }
}

/** Switch to `code`, remember it, re-translate the page and tell listeners ("languagechange" on window). */
export async function setLanguage(code, { remember = true } = {}) {
  await Promise.all([load("en"), load(code)]);
  current = code;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, code);
    } catch {
      // storage disabled: the choice lasts for this page only
    }
  }
  document.documentElement.lang = locale();
  translate();
  const select = document.getElementById("lang-select");
  if (select) select.value = code;
  window.dispatchEvent(new CustomEvent("nbserver:language", { detail: code }));
}

/** Load the preferred language and wire the switcher (#lang-select). */
export async function initI18n() {
  const select = document.getElementById("lang-select");
  if (select) select.addEventListener("change", () => setLanguage(select.value));
  await setLanguage(preferredLanguage(), { remember: false });
}

// -- formatting ---------------------------------------------------------------------------------

const UNITS = ["B", "KB", "MB", "GB", "TB"];

export function formatSize(bytes) {
  if (bytes === null || bytes === undefined) return "";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value) + " " + UNITS[unit];
}

export function formatDate(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

export function formatTime(iso) {
  return new Intl.DateTimeFormat(locale(), { timeStyle: "short" }).format(iso ? new Date(iso) : new Date());
}

/** "3 minutes ago", in the current language. */
export function formatRelative(iso) {
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const format = new Intl.RelativeTimeFormat(locale(), { numeric: "auto" });
  const steps = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [30, "day"],
    [12, "month"],
  ];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return format.format(value, unit);
    value = Math.round(value / size);
  }
  return format.format(value, "year");
}
