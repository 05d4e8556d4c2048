// The page's configuration, rendered by the server into <script id="page-config" type="application/json">:
// { baseUrl, page, path, languages: {code: catalogue URL}, ...page-specific keys }.
const element = document.getElementById("page-config");

export const config = Object.freeze(JSON.parse(element ? element.textContent : "{}"));
export const baseUrl = config.baseUrl || "/";
