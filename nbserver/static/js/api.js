// The REST API, as any client of nbserver (or jupyter_server) would use it. Requests are
// authenticated by the login cookie; unsafe ones echo the `_xsrf` cookie in X-XSRFToken, as the
// server requires for cookie-authenticated requests.

import { baseUrl, pagesUrl } from "./config.js";

export class ApiError extends Error {
  constructor(status, message, reason) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.reason = reason;
  }
}

// -- paths and URLs -------------------------------------------------------------------------------

/** An API path ("dir/a b.ipynb") as a URL path: each segment escaped, the slashes kept. */
export function encodePath(path) {
  return String(path)
    .split("/")
    .filter((part) => part !== "")
    .map(encodeURIComponent)
    .join("/");
}

function joinUrl(prefix, page, path) {
  const encoded = encodePath(path);
  return prefix + page + (encoded ? "/" + encoded : "");
}

/**
 * A page of this UI, from the page config's pagesUrl: pageUrl("notebooks", "a b.ipynb") ->
 * "/notebooks/a%20b.ipynb", or "/nbserver/notebooks/a%20b.ipynb" when Notebook 7 owns /notebooks.
 */
export function pageUrl(page, path = "") {
  return joinUrl(pagesUrl, page, path);
}

/** "<base>/files/<path>": the file itself (a server route, not a page of this UI). */
export function filesUrl(path, { download = false } = {}) {
  return joinUrl(baseUrl, "files", path) + (download ? "?download=1" : "");
}

export function joinPath(directory, name) {
  return directory ? `${directory}/${name}` : name;
}

export function parentPath(path) {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

export function baseName(path) {
  return path.slice(path.lastIndexOf("/") + 1);
}

// -- requests -------------------------------------------------------------------------------------

export function xsrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/**
 * `method` `<base>/<path>` with an optional JSON `body` and `query` object. Resolves to the parsed
 * JSON (null for 204); rejects with an ApiError carrying the server's {message, reason}. A request
 * refused for lack of a login sends the browser to the login page.
 */
export async function request(method, path, { body, query } = {}) {
  const url = new URL(baseUrl + path, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) url.searchParams.set(key, value);
  const headers = { Accept: "application/json" };
  if (!["GET", "HEAD"].includes(method)) headers["X-XSRFToken"] = xsrfToken();
  // never from the HTTP cache: API responses carry Last-Modified and no Cache-Control (as
  // jupyter_server's), so a browser could reuse a directory listing from before an upload
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok) {
    let info = {};
    try {
      info = await response.json();
    } catch {
      // not JSON: keep the status text
    }
    if (response.status === 403 && info.reason === "auth") {
      const next = window.location.pathname + window.location.search;
      window.location.assign(`${baseUrl}login?next=${encodeURIComponent(next)}`);
    }
    throw new ApiError(response.status, info.message || response.statusText, info.reason);
  }
  return response.status === 204 ? null : response.json();
}

function contentsPath(path, ...more) {
  const encoded = encodePath(path);
  return ["api/contents" + (encoded ? "/" + encoded : ""), ...more.map(encodeURIComponent)].join("/");
}

export const contents = {
  get: (path, query = {}) => request("GET", contentsPath(path), { query }),
  save: (path, model) => request("PUT", contentsPath(path), { body: model }),
  /** Create an untitled entry ({type, ext}) or a copy ({copy_from}) in `directory`. */
  create: (directory, body) => request("POST", contentsPath(directory), { body }),
  rename: (path, newPath) => request("PATCH", contentsPath(path), { body: { path: newPath } }),
  remove: (path) => request("DELETE", contentsPath(path)),
  checkpoints: (path) => request("GET", contentsPath(path, "checkpoints")),
  createCheckpoint: (path) => request("POST", contentsPath(path, "checkpoints")),
  restoreCheckpoint: (path, id) => request("POST", contentsPath(path, "checkpoints", id)),
};

export const kernelspecs = {
  list: () => request("GET", "api/kernelspecs"),
};

export const sessions = {
  list: () => request("GET", "api/sessions"),
  create: (model) => request("POST", "api/sessions", { body: model }),
  update: (id, model) => request("PATCH", `api/sessions/${encodeURIComponent(id)}`, { body: model }),
  remove: (id) => request("DELETE", `api/sessions/${encodeURIComponent(id)}`),
};

export const kernels = {
  list: () => request("GET", "api/kernels"),
  get: (id) => request("GET", `api/kernels/${encodeURIComponent(id)}`),
  remove: (id) => request("DELETE", `api/kernels/${encodeURIComponent(id)}`),
  interrupt: (id) => request("POST", `api/kernels/${encodeURIComponent(id)}/interrupt`),
  restart: (id) => request("POST", `api/kernels/${encodeURIComponent(id)}/restart`),
};

/** The websocket URL of a kernel's channels, for the client `sessionId`. */
export function channelsUrl(kernelId, sessionId) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const path = `${baseUrl}api/kernels/${encodeURIComponent(kernelId)}/channels`;
  return `${scheme}//${window.location.host}${path}?session_id=${encodeURIComponent(sessionId)}`;
}
