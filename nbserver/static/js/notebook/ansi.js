// ANSI escape sequences (as in tracebacks and colored logs) to DOM: SGR colors and bold become
// spans with classes (ansi-red-fg, ansi-bright-green-bg, ansi-bold) or, for 256-color and RGB
// codes, inline colors set through the CSSOM; every other escape sequence is dropped. Text is
// only ever put into text nodes.

const NAMES = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];
// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b\[([\d;]*)([A-Za-z])|\x1b[^[]?/g;

function color256(n) {
  if (n < 16) return { name: (n >= 8 ? "bright-" : "") + NAMES[n % 8] };
  if (n < 232) {
    const level = (v) => (v === 0 ? 0 : 55 + v * 40);
    const i = n - 16;
    return { rgb: [level(Math.floor(i / 36)), level(Math.floor(i / 6) % 6), level(i % 6)] };
  }
  const gray = 8 + (n - 232) * 10;
  return { rgb: [gray, gray, gray] };
}

/** Apply the SGR parameters `codes` to `state` ({fg, bg, bold}); returns the new state. */
function applySGR(state, codes) {
  const next = { ...state };
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i];
    if (code === 0) Object.assign(next, { fg: null, bg: null, bold: false });
    else if (code === 1) next.bold = true;
    else if (code === 22) next.bold = false;
    else if (code >= 30 && code <= 37) next.fg = { name: NAMES[code - 30] };
    else if (code >= 90 && code <= 97) next.fg = { name: "bright-" + NAMES[code - 90] };
    else if (code >= 40 && code <= 47) next.bg = { name: NAMES[code - 40] };
    else if (code >= 100 && code <= 107) next.bg = { name: "bright-" + NAMES[code - 100] };
    else if (code === 39) next.fg = null;
    else if (code === 49) next.bg = null;
    else if (code === 38 || code === 48) {
      let color = null;
      if (codes[i + 1] === 5) {
        color = color256(codes[i + 2] ?? 0);
        i += 2;
      } else if (codes[i + 1] === 2) {
        color = { rgb: codes.slice(i + 2, i + 5).map((v) => Math.min(255, v || 0)) };
        i += 4;
      }
      if (code === 38) next.fg = color;
      else next.bg = color;
    }
  }
  return next;
}

function span(text, state) {
  if (!state.fg && !state.bg && !state.bold) return document.createTextNode(text);
  const el = document.createElement("span");
  const classes = [];
  if (state.bold) classes.push("ansi-bold");
  for (const [which, color] of [["fg", state.fg], ["bg", state.bg]]) {
    if (color?.name) classes.push(`ansi-${color.name}-${which}`);
    else if (color?.rgb) el.style[which === "fg" ? "color" : "backgroundColor"] = `rgb(${color.rgb.join(",")})`;
  }
  if (classes.length) el.className = classes.join(" ");
  el.textContent = text;
  return el;
}

/** A DocumentFragment showing `text` with its ANSI colors. */
export function ansiToFragment(text) {
  const fragment = document.createDocumentFragment();
  let state = { fg: null, bg: null, bold: false };
  let last = 0;
  for (const match of text.matchAll(ESCAPE)) {
    if (match.index > last) fragment.append(span(text.slice(last, match.index), state));
    if (match[2] === "m") state = applySGR(state, (match[1] || "0").split(";").map((v) => parseInt(v || "0", 10)));
    last = match.index + match[0].length;
  }
  if (last < text.length) fragment.append(span(text.slice(last), state));
  return fragment;
}

/** Terminal-like handling of carriage returns: a "\r" not followed by "\n" starts the line over. */
export function fixCarriageReturns(text) {
  return text
    .replace(/\r+\n/g, "\n")
    .split("\n")
    .map((line) => line.slice(line.lastIndexOf("\r") + 1))
    .join("\n");
}
