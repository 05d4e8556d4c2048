// /login and /logout: only the interface language; the form works without scripts.

import { $ } from "../dom.js";
import { t } from "../i18n.js";
import { startPage } from "../page.js";

startPage(async () => {
  const heading = $(".login-card h1");
  if (heading) document.title = heading.textContent;
  window.addEventListener("nbserver:language", () => {
    if (heading) document.title = t(heading.dataset.i18n);
  });
});
