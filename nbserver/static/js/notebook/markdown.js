// A small Markdown renderer that builds DOM nodes directly (no HTML strings, no innerHTML): raw
// HTML in the source is shown as text, and link and image URLs are limited to http(s), mailto,
// relative URLs, cell attachments and data:image/ URLs. It covers what notebooks use most:
// headings, paragraphs, emphasis, code spans and fenced/indented code, lists (nested by
// indentation), block quotes, tables, rules, links, images, and $math$ (shown as TeX source).

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])(\s+|$)/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
const MATH_BLOCK = /^ {0,3}\$\$/;

function el(tag, ...children) {
  const node = document.createElement(tag);
  node.append(...children);
  return node;
}

/**
 * `url` if it is safe to use in an href (`image` false) or img src (`image` true), else null.
 * `resolve(url, image)` may rewrite relative URLs (e.g. images to /files/<dir>/...).
 */
function safeUrl(url, image, options) {
  const trimmed = url.trim();
  if (image && trimmed.startsWith("attachment:")) {
    const bundle = options.attachments?.[trimmed.slice("attachment:".length)];
    const [type, data] = Object.entries(bundle || {}).find(([t]) => t.startsWith("image/")) || [];
    return type ? `data:${type};base64,${String(data).replace(/\s/g, "")}` : null;
  }
  if (/^(https?:|mailto:)/i.test(trimmed) || trimmed.startsWith("#")) return trimmed;
  if (image && /^data:image\/[\w.+-]+[;,]/i.test(trimmed)) return trimmed;
  if (/^[a-z][\w+.-]*:/i.test(trimmed) || /^\s*\/\//.test(trimmed)) return null; // other schemes
  return options.resolve ? options.resolve(trimmed, image) : trimmed;
}

// -- inline ------------------------------------------------------------------------------------

// (url "title"): the URL may hold one level of balanced parentheses
const LINK_TAIL = String.raw`\(\s*<?((?:[^()\s<>]|\([^()\s]*\))*)>?(?:\s+"([^"]*)")?\s*\)`;
const INLINE_RULES = [
  [/^\\([!-/:-@[-`{-~])/, (m) => document.createTextNode(m[1])],
  [/^(`+)([^`][\s\S]*?)\1(?!`)/, (m) => el("code", m[2].replace(/\n/g, " ").replace(/^ (.*) $/, "$1"))],
  [/^\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)/, (m) => span("math", m[1])],
  [new RegExp(String.raw`^!\[([^\]]*)\]` + LINK_TAIL), (m, o) => image(m[1], m[2], m[3], o)],
  [new RegExp(String.raw`^\[((?:[^\[\]\\]|\\.|\[[^\]]*\])*)\]` + LINK_TAIL), (m, o) => link(inline(m[1], o), m[2], m[3], o)],
  [/^<((?:https?:|mailto:)[^>\s]+)>/, (m, o) => link([document.createTextNode(m[1])], m[1], null, o)],
  [/^https?:\/\/[^\s<]*[^\s<.,;:!?)"'*_]/, (m, o) => link([document.createTextNode(m[0])], m[0], null, o)],
  [/^(\*\*|__)(?=\S)([\s\S]*?\S)\1/, (m, o) => el("strong", ...inline(m[2], o))],
  [/^\*(?=[^\s*])([\s\S]*?[^\s\\*])\*(?!\*)/, (m, o) => el("em", ...inline(m[1], o))],
  [/^_(?=[^\s_])([\s\S]*?[^\s\\_])_(?![\w_])/, (m, o) => el("em", ...inline(m[1], o))], // not inside words
  [/^~~(?=\S)([\s\S]*?\S)~~/, (m, o) => el("del", ...inline(m[1], o))],
  [/^(?: {2,}|\\)\n/, () => document.createElement("br")],
];
const SPECIAL = /[\\`$!\[<h*_~ ]/;

function span(cls, text) {
  const node = el("span", text);
  node.className = cls;
  return node;
}

function link(children, url, title, options) {
  const href = safeUrl(url, false, options);
  if (href === null) return el("span", ...children);
  const a = el("a", ...children);
  a.href = href;
  if (title) a.title = title;
  if (!href.startsWith("#")) {
    a.target = "_blank";
    a.rel = "noopener noreferrer";
  }
  return a;
}

function image(alt, url, title, options) {
  const src = safeUrl(url, true, options);
  if (src === null) return document.createTextNode(alt);
  const img = document.createElement("img");
  img.src = src;
  img.alt = alt;
  if (title) img.title = title;
  return img;
}

/** Inline Markdown to an array of nodes. */
export function inline(text, options = {}) {
  const nodes = [];
  let plain = "";
  let i = 0;
  const flush = () => {
    if (plain) nodes.push(document.createTextNode(plain));
    plain = "";
  };
  outer: while (i < text.length) {
    const rest = text.slice(i);
    const boundary = i === 0 || !/\w/.test(text[i - 1]); // no emphasis or autolink inside words
    if (SPECIAL.test(rest[0])) {
      for (const [pattern, make] of INLINE_RULES) {
        if (!boundary && (rest[0] === "_" || rest[0] === "h")) break;
        const match = rest.match(pattern);
        if (match) {
          flush();
          nodes.push(make(match, options));
          i += match[0].length;
          continue outer;
        }
      }
    }
    plain += text[i];
    i += 1;
  }
  flush();
  return nodes;
}

// -- blocks ------------------------------------------------------------------------------------

function splitRow(line) {
  return line
    .trim()
    .replace(/^\|/, "")
    .replace(/(?<!\\)\|$/, "")
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim().replace(/\\\|/g, "|"));
}

function table(lines, options) {
  const aligns = splitRow(lines[1]).map((c) => (c.endsWith(":") ? (c.startsWith(":") ? "center" : "right") : c.startsWith(":") ? "left" : ""));
  const row = (cells, tag) =>
    el(
      "tr",
      ...cells.map((cell, i) => {
        const node = el(tag, ...inline(cell, options));
        if (aligns[i]) node.style.textAlign = aligns[i];
        return node;
      }),
    );
  const head = el("thead", row(splitRow(lines[0]), "th"));
  const body = el("tbody", ...lines.slice(2).map((line) => row(splitRow(line), "td")));
  return el("table", head, body);
}

function startsBlock(line, next) {
  return (
    FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line) ||
    MATH_BLOCK.test(line) || (line.includes("|") && next !== undefined && TABLE_RULE.test(next) && next.includes("-"))
  );
}

function list(lines, i, options) {
  const first = lines[i].match(ITEM);
  const ordered = /\d/.test(first[2]);
  const node = document.createElement(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) node.start = parseInt(first[2], 10);
  while (i < lines.length) {
    const match = lines[i].match(ITEM);
    if (!match || /\d/.test(match[2]) !== ordered) break;
    const indent = match[0].length;
    const item = [lines[i].slice(indent)];
    i += 1;
    while (i < lines.length) {
      const line = lines[i];
      if (line.trim() === "") {
        if (i + 1 < lines.length && /^\s/.test(lines[i + 1]) && lines[i + 1].trim() !== "") {
          item.push("");
          i += 1;
          continue;
        }
        break;
      }
      if (/^\s{2,}/.test(line)) item.push(line.replace(new RegExp(`^ {0,${indent}}`), ""));
      else if (ITEM.test(line) || startsBlock(line)) break;
      else item.push(line); // lazy continuation
      i += 1;
    }
    const content = blocks(item, options);
    // a one-paragraph item shows its text without the paragraph margin
    const li = content.length === 1 && content[0].tagName === "P" ? el("li", ...content[0].childNodes) : el("li", ...content);
    node.append(li);
    while (i < lines.length && lines[i].trim() === "" && i + 1 < lines.length && ITEM.test(lines[i + 1])) i += 1;
  }
  return [node, i];
}

/** Block-level Markdown (an array of lines) to an array of elements. */
function blocks(lines, options) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let match;
    if (line.trim() === "") {
      i += 1;
    } else if ((match = line.match(FENCE))) {
      const code = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(match[1])) code.push(lines[i++]);
      i += 1;
      const codeEl = el("code", code.join("\n"));
      if (match[2]) codeEl.className = `language-${match[2]}`;
      out.push(el("pre", codeEl));
    } else if (MATH_BLOCK.test(line)) {
      const tex = [line.replace(MATH_BLOCK, "")];
      let closed = /\$\$\s*$/.test(tex[0]) && tex[0].trim() !== "";
      i += 1;
      while (!closed && i < lines.length) {
        tex.push(lines[i]);
        closed = /\$\$\s*$/.test(lines[i]);
        i += 1;
      }
      const div = el("div", tex.join("\n").replace(/\$\$\s*$/, "").trim());
      div.className = "math math-display";
      out.push(div);
    } else if ((match = line.match(HEADING))) {
      out.push(el(`h${match[1].length}`, ...inline(match[2] || "", options)));
      i += 1;
    } else if (RULE.test(line)) {
      out.push(document.createElement("hr"));
      i += 1;
    } else if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && lines[i].trim() !== "" && (QUOTE.test(lines[i]) || quoted.length)) {
        quoted.push(lines[i].replace(QUOTE, ""));
        i += 1;
      }
      out.push(el("blockquote", ...blocks(quoted, options)));
    } else if (ITEM.test(line)) {
      const [node, next] = list(lines, i, options);
      out.push(node);
      i = next;
    } else if (/^( {4}|\t)/.test(line)) {
      const code = [];
      while (i < lines.length && (/^( {4}|\t)/.test(lines[i]) || lines[i].trim() === "")) {
        code.push(lines[i].replace(/^( {4}|\t)/, ""));
        i += 1;
      }
      while (code.length && code[code.length - 1].trim() === "") code.pop();
      out.push(el("pre", el("code", code.join("\n"))));
    } else if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes("-")) {
      const rows = [line, lines[i + 1]];
      i += 2;
      while (i < lines.length && lines[i].includes("|") && lines[i].trim() !== "") rows.push(lines[i++]);
      out.push(table(rows, options));
    } else {
      const para = [line];
      i += 1;
      while (i < lines.length && lines[i].trim() !== "" && !startsBlock(lines[i], lines[i + 1])) para.push(lines[i++]);
      out.push(el("p", ...inline(para.join("\n").trim(), options)));
    }
  }
  return out;
}

/**
 * Render Markdown `source` into a DocumentFragment. Options: `attachments` (a cell's attachments, for
 * "attachment:name" images) and `resolve(url, isImage)` (rewrites relative URLs).
 */
export function renderMarkdown(source, options = {}) {
  const fragment = document.createDocumentFragment();
  fragment.append(...blocks(String(source).replace(/\r\n?/g, "\n").split("\n"), options));
  return fragment;
}
