// The page's configuration, rendered by the server into <script id="page-config" type="application/json">:
// { baseUrl, pagesUrl, page, path, languages: {code: catalogue URL}, ...page-specific keys }.
// baseUrl leads to the server's APIs and files; pagesUrl to the UI's pages (baseUrl itself, or
// "<baseUrl>nbserver/" when Notebook 7 owns /tree, /notebooks and /edit).
const element = document.getElementById("page-config");

export const config = Object.freeze(JSON.parse(element ? element.textContent : "{}"));
export const baseUrl = config.baseUrl || "/";
export const pagesUrl = config.pagesUrl || baseUrl;
